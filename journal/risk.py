"""The seam where alert rules run (SPEC §9), inside the transaction of the write that fired them.

Entry, sync and assessment writes call `evaluate_writes` once, after their rows (and the daily
rollups) are written and before commit. Each rule in RULES (journal.alert_rules) looks at what was
written and returns its firings; the alerts are raised in the same transaction (so an alert exists
even when Redis is down), and when a `high` or `urgent` one fired the response carries the
clinic's `support` block.

Paused or discharged patients fire no alerts (SPEC §1), but a patient who tells the app about
self-harm or a lapse still gets the support block: showing crisis resources never hurts, and the
block says plainly when the clinic reads the journal.
"""

from collections.abc import Callable, Iterable
from dataclasses import replace

from django.utils import timezone

from accounts.models import PatientStatus
from journal.alert_rules import ALL_RULES, Firing, Written
from journal.models import SEVERITY_OF_RULE
from journal.selectors.alerts import severities_fired_by
from journal.services.alerts import Raising, alerts_raise

__all__ = ["RULES", "Firing", "Written", "evaluate_writes", "support_block", "support_for_retry"]

SEVERITY_ORDER = ("low", "medium", "high", "urgent")

Rule = Callable[[Written], list[Firing]]
RULES: list[Rule] = list(ALL_RULES)


def evaluate_writes(written: Written, *, replayed_entry_ids: Iterable = ()) -> dict | None:
    """Runs every rule and raises what fired; returns the `support` block when one fired high or
    urgent, else None. `replayed_entry_ids`: entries a sync batch repeats unchanged, whose first
    answer may have been lost — the alerts they fired then count toward the block too."""
    if written.now is None:
        written = replace(written, now=timezone.now())
    firings = [firing for rule in RULES for firing in rule(written)]
    if firings and written.patient.status == PatientStatus.ACTIVE:
        raisings = [Raising(written.patient.pk, firing.rule, [firing.evidence]) for firing in firings]
        alerts_raise(raisings=raisings, now=written.now)
    severities = [SEVERITY_OF_RULE[firing.rule] for firing in firings]
    if replayed_entry_ids:
        severities += severities_fired_by(written.patient, entry_ids=replayed_entry_ids)
    worst = _worst_calls_for_support(severities)
    return support_block(written.patient.clinic, worst) if worst else None


def _worst_calls_for_support(severities) -> str | None:
    worst = max(severities, key=SEVERITY_ORDER.index, default=None)
    return worst if worst in ("high", "urgent") else None


def support_for_retry(patient, *, entry_ids: Iterable = (), assessment_ids: Iterable = ()) -> dict | None:
    """The support block for a same-content retry of an entry or assessment: the phone retries
    because it never got the first answer, so a patient who reported a lapse or thoughts of
    self-harm must not miss the resources that answer carried. Read back from the alerts that
    write fired."""
    worst = _worst_calls_for_support(severities_fired_by(patient, entry_ids=entry_ids, assessment_ids=assessment_ids))
    return support_block(patient.clinic, worst) if worst else None


def support_block(clinic, severity: str) -> dict:
    """The clinic's resources for a severity, and a plain statement of when the journal is read."""
    resources = clinic.crisis_resources_shown(severity)
    if severity == "urgent":
        lead = [r for r in resources if r["phone"] == "988"] + [r for r in resources if r["phone"] != "988"]
        if clinic.emergency_phone:
            lead.insert(
                1, {"name": f"{clinic.name} emergency line", "phone": clinic.emergency_phone, "sms": "", "url": ""}
            )
        message = "If you might hurt yourself or are in danger, please reach out right now."
    else:
        lead = resources
        if clinic.contact_phone:
            lead.insert(0, {"name": clinic.name, "phone": clinic.contact_phone, "sms": "", "url": ""})
        message = "Thank you for telling us. Support is available if you want it."
    return {"message": message, "resources": lead, "monitored": clinic.monitoring_statement}
