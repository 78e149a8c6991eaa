"""FHIR R4 for the care team's export (SPEC §10): pure functions, the export's dicts in, resources out.

A `collection` Bundle holding a pseudonymous Patient (the project's id, no name or email), one
`survey` Observation per measure of each journal entry, and for each questionnaire a
QuestionnaireResponse with a total-score Observation (and, for the PHQ-9, the item-9 Observation
that the self-harm alert reads).

Codes: LOINC only where the code is certainly the concept (sleep duration, the PHQ-9 and GAD-7
panels, totals and PHQ-9 item 9). Craving, mood and anxiety are the app's own 0–10 scales and use
events its own records; LOINC has no code for exactly these, so they are coded in the project's
CodeSystem rather than borrowed from a look-alike. Free-text notes are not put in FHIR: the coded
data travels here, notes travel in the CSV and JSON exports.

The redisclosure notice rides on the Bundle's `meta`: the HL7 security labels for 42 CFR Part 2
(`42CFRPart2`, refrain policy `NORDSCLCD`, confidentiality `R`) and the notice's full text in a
`meta` extension.
"""

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings

from journal.exports import utc_iso

# The namespace of Interlude's own code systems and identifiers: a stable name that receiving
# systems match on, so one value for every deployment unless an organisation publishes its own.
BASE = settings.FHIR_CANONICAL_BASE
JOURNAL_CODES = f"{BASE}/CodeSystem/journal"
SUBSTANCE_CODES = f"{BASE}/CodeSystem/substance"
SEVERITY_CODES = f"{BASE}/CodeSystem/severity"
PATIENT_IDS = f"{BASE}/sid/patient"
ENTRY_IDS = f"{BASE}/sid/entry"
ASSESSMENT_IDS = f"{BASE}/sid/assessment"
NOTICE_EXTENSION = f"{BASE}/StructureDefinition/redisclosure-notice"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

_SURVEY = [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}]
_SCALES = {  # entry field → the project's code and its display
    "craving": "Craving intensity, 0 (none) to 10 (worst ever)",
    "mood": "Mood, 0 (very low) to 10 (very good)",
    "anxiety": "Anxiety, 0 (none) to 10 (worst)",
}
SLEEP_DURATION = {"system": LOINC, "code": "93832-4", "display": "Sleep duration"}
SUBSTANCE_USE = {"system": JOURNAL_CODES, "code": "use", "display": "Substance use event (self-reported)"}
AMOUNT = {"system": JOURNAL_CODES, "code": "use-amount", "display": "Amount used, as the patient described it"}


class Panel:
    """LOINC codes of a questionnaire that LOINC defines. The panel names the QuestionnaireResponse's
    questionnaire (LOINC's canonical form URL); `items` are those given an Observation of their own."""

    def __init__(self, panel: str, total: str, total_name: str, items: dict[int, tuple[str, str]]):
        self.questionnaire = f"http://loinc.org/q/{panel}"
        self.total = {"system": LOINC, "code": total, "display": total_name}
        self.items = items  # 1-based item number → (LOINC code, display)


PANELS = {
    "phq9": Panel(
        "44249-1",  # PHQ-9 quick depression assessment panel
        "44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
        {9: ("44260-8", "Thoughts that you would be better off dead, or of hurting yourself in some way")},
    ),
    "gad7": Panel(
        "69737-5",  # Generalized anxiety disorder 7 item (GAD-7)
        "70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported]",
        {},
    ),
}  # fmt: skip


def _derived_id(source_id: str, part: str) -> str:
    """A stable id for a resource derived from one record: the same export twice has the same ids."""
    return str(uuid.uuid5(uuid.UUID(source_id), part))


def _bundle_entry(resource: dict) -> dict:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def bundle_shell(*, bundle_id: str, generated_at: datetime, notice: str) -> dict:
    """Every Bundle field but `entry`: the part a streamed Bundle writes first."""
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {
            "lastUpdated": utc_iso(generated_at),
            "security": [
                {"system": ACT_CODE, "code": "42CFRPart2", "display": "42 CFR Part2"},
                {"system": ACT_CODE, "code": "NORDSCLCD", "display": "no redisclosure without consent directive"},
                {"system": CONFIDENTIALITY, "code": "R", "display": "restricted"},
            ],
            "extension": [{"url": NOTICE_EXTENSION, "valueString": notice}],
        },
        "type": "collection",
        "timestamp": utc_iso(generated_at),
    }


def patient_resource(patient_id: str) -> dict:
    return {
        "resourceType": "Patient",
        "id": str(patient_id),
        "identifier": [{"system": PATIENT_IDS, "value": str(patient_id)}],
    }


def _observation(entry: dict, part: str, *, subject: dict, code: dict, value: dict) -> dict:
    return {
        "resourceType": "Observation",
        "id": _derived_id(entry["id"], part),
        "identifier": [{"system": ENTRY_IDS, "value": f"{entry['id']}#{part}"}],
        # An edited entry's figures replace what was first recorded.
        "status": "amended" if entry.get("edited") else "final",
        "category": _SURVEY,
        "code": {"coding": [code], "text": code["display"]},
        "subject": subject,
        "effectiveDateTime": utc_iso(entry["occurred_at"]),
        "issued": utc_iso(entry["received_at"]),
        **value,
    }


def entry_observations(entry: dict, *, patient_id: str) -> list[dict]:
    """The Observations one journal entry makes: one per measure it holds."""
    subject = {"reference": f"urn:uuid:{patient_id}"}
    observations = []
    for field, display in _SCALES.items():
        if entry.get(field) is not None:
            code = {"system": JOURNAL_CODES, "code": field, "display": display}
            observations.append(_observation(entry, field, subject=subject, code=code,
                                             value={"valueInteger": entry[field]}))  # fmt: skip
    if entry.get("sleep_hours") is not None:
        quantity = {"value": float(entry["sleep_hours"]), "unit": "h", "system": UCUM, "code": "h"}
        observations.append(_observation(entry, "sleep", subject=subject, code=SLEEP_DURATION,
                                         value={"valueQuantity": quantity}))  # fmt: skip
    if entry.get("kind") == "use" and entry.get("substance"):
        substance = entry["substance"]
        concept = {"coding": [{"system": SUBSTANCE_CODES, "code": substance}], "text": substance}
        value = {"valueCodeableConcept": concept}
        if entry.get("amount"):
            value["component"] = [{"code": {"coding": [AMOUNT], "text": AMOUNT["display"]},
                                   "valueString": entry["amount"]}]  # fmt: skip
        observations.append(_observation(entry, "use", subject=subject, code=SUBSTANCE_USE, value=value))
    return observations


def assessment_resources(assessment: dict, *, patient_id: str) -> list[dict]:
    """A QuestionnaireResponse and the Observations derived from it (total score; PHQ-9 item 9)."""
    subject = {"reference": f"urn:uuid:{patient_id}"}
    instrument = assessment["instrument"]
    panel = PANELS.get(instrument)
    answers = list(assessment["answers"])
    response_id = str(assessment["id"])
    response = {
        "resourceType": "QuestionnaireResponse",
        "id": response_id,
        "identifier": {"system": ASSESSMENT_IDS, "value": response_id},
        "questionnaire": panel.questionnaire if panel else f"{BASE}/Questionnaire/{instrument}",
        "status": "completed",
        "subject": subject,
        "authored": utc_iso(assessment["completed_at"]),
        "item": [
            {"linkId": str(number), "answer": [{"valueInteger": answer}]}
            for number, answer in enumerate(answers, start=1)
        ],  # fmt: skip
    }
    derived_from = [{"reference": f"urn:uuid:{response_id}"}]

    def observation(part: str, code: dict, value: int, **extra) -> dict:
        return {
            "resourceType": "Observation",
            "id": _derived_id(response_id, part),
            "status": "final",
            "category": _SURVEY,
            "code": {"coding": [code], "text": code["display"]},
            "subject": subject,
            "effectiveDateTime": utc_iso(assessment["completed_at"]),
            "valueInteger": value,
            "derivedFrom": derived_from,
            **extra,
        }

    own_total = {"system": JOURNAL_CODES, "code": f"{instrument}-total", "display": f"{instrument} total score"}
    total_code = panel.total if panel else own_total
    extra = {}
    if assessment.get("severity"):
        severity = assessment["severity"]
        extra["interpretation"] = [{"coding": [{"system": SEVERITY_CODES, "code": severity}], "text": severity}]
    resources = [response, observation("total", total_code, assessment["score"], **extra)]
    for number, (code, display) in (panel.items if panel else {}).items():
        if number <= len(answers):
            item_code = {"system": LOINC, "code": code, "display": display}
            resources.append(observation(f"item-{number}", item_code, answers[number - 1]))
    return resources


def bundle_entries(*, patient_id: str, entries: Iterable[dict], assessments: Iterable[dict]) -> Iterator[dict]:
    """Bundle.entry items, one at a time: the Patient first, then what refers to it."""
    patient_id = str(patient_id)
    yield _bundle_entry(patient_resource(patient_id))
    for entry in entries:
        for resource in entry_observations(entry, patient_id=patient_id):
            yield _bundle_entry(resource)
    for assessment in assessments:
        for resource in assessment_resources(assessment, patient_id=patient_id):
            yield _bundle_entry(resource)


def bundle(*, patient_id: str, entries: Iterable[dict], assessments: Iterable[dict], generated_at: datetime,
           notice: str, bundle_id: str | None = None) -> dict:  # fmt: skip
    """The whole Bundle as one dict (the view streams `bundle_shell` + `bundle_entries` instead)."""
    shell = bundle_shell(bundle_id=bundle_id or str(uuid.uuid4()), generated_at=generated_at, notice=notice)
    return {**shell, "entry": list(bundle_entries(patient_id=patient_id, entries=entries, assessments=assessments))}
