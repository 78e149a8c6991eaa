from django.db import models

from accounts.models import Patient


class DailyRollup(models.Model):
    """One patient's journal day in figures: sums and counts of their live entries (SPEC §8).

    Kept exact in the transaction of every entry write (journal.services.rollups), so trends, the
    triage list and the alert rules read at most a row per day instead of every entry. Sums and
    counts, not means, so any window's mean is sum(sum) / sum(count) over its days.
    """

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    local_date = models.DateField()
    entries = models.PositiveIntegerField()
    check_ins = models.PositiveIntegerField()
    uses = models.PositiveIntegerField()
    craving_sum = models.PositiveIntegerField()
    craving_count = models.PositiveIntegerField()
    craving_max = models.PositiveSmallIntegerField(null=True)
    mood_sum = models.PositiveIntegerField()
    mood_count = models.PositiveIntegerField()
    anxiety_sum = models.PositiveIntegerField()
    anxiety_count = models.PositiveIntegerField()
    sleep_sum = models.DecimalField(max_digits=8, decimal_places=2)
    sleep_count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "local_date"], name="rollup_once_per_patient_day"),
            models.CheckConstraint(condition=models.Q(entries__gte=1), name="rollup_has_entries"),
        ]
