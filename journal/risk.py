"""The seam where alert rules run (SPEC §9), inside the transaction of the write that fired them.

Entry, sync and assessment writes call `evaluate_writes` once, after their rows are written and
before commit. Each rule in RULES looks at what was written and returns the severity it fired
("urgent", "high", "medium", "low") or None. When a `high` or `urgent` one fired, the response
carries the clinic's `support` block. The alert rules themselves arrive with the alerts issue;
until then RULES is empty and nothing fires.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from accounts.models import Patient

SEVERITY_ORDER = ("low", "medium", "high", "urgent")


@dataclass(frozen=True)
class Written:
    """What one write put in the database, for the rules to look at."""

    patient: Patient
    entries: Sequence = field(default_factory=tuple)
    assessments: Sequence = field(default_factory=tuple)


Rule = Callable[[Written], str | None]
RULES: list[Rule] = []


def evaluate_writes(written: Written) -> dict | None:
    """Runs every rule; returns the `support` block when one fired high or urgent, else None."""
    fired = [severity for rule in RULES if (severity := rule(written)) is not None]
    if not fired:
        return None
    worst = max(fired, key=SEVERITY_ORDER.index)
    if worst not in ("high", "urgent"):
        return None
    return support_block(written.patient.clinic, worst)


def support_block(clinic, severity: str) -> dict:
    """The clinic's resources for a severity, and a plain statement of when the journal is read."""
    resources = list(clinic.crisis_resources)
    if severity == "urgent":
        lead = [r for r in resources if r.get("phone") == "988"] + [r for r in resources if r.get("phone") != "988"]
        if clinic.emergency_phone:
            lead.insert(
                1, {"name": f"{clinic.name} emergency line", "phone": clinic.emergency_phone, "sms": "", "url": ""}
            )
        message = "If you might hurt yourself or are in danger, please reach out right now."
    else:
        lead = list(resources)
        if clinic.contact_phone:
            lead.insert(0, {"name": clinic.name, "phone": clinic.contact_phone, "sms": "", "url": ""})
        message = "Thank you for telling us. Support is available if you want it."
    return {"message": message, "resources": lead, "monitored": clinic.monitoring_statement}
