"""Forms of the dashboard pages that act (issue 6).

A form only turns what a browser posts (a local time without an offset, empty strings, checkboxes)
into the values the JSON API takes, then hands them to the API's own serializer: the limits and
choices have one home, so a page and the API can never disagree about what is valid. What a
service refuses (a route on a non-ketamine session) comes back through `add_api_errors`.
"""

import uuid
import zoneinfo

from django import forms
from django.utils import timezone
from rest_framework import serializers

from accounts.models import SUBSTANCES
from accounts.serializers import PatientCreateSerializer
from journal.models import AlertSeverity, AlertStatus, KetamineRoute, SessionKind
from journal.serializers.alerts import NOTE_MAX, AlertAcknowledgeSerializer, AlertResolveSerializer
from journal.serializers.sessions import SessionSerializer

LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"
ROUTE_LABELS = {
    KetamineRoute.IM: "IM (intramuscular)",
    KetamineRoute.IV: "IV (intravenous)",
    KetamineRoute.SUBLINGUAL: "Sublingual",
    KetamineRoute.INTRANASAL: "Intranasal",
    KetamineRoute.ORAL: "Oral",
}


def _flat(value) -> list[str]:
    if isinstance(value, dict):
        return [message for item in value.values() for message in _flat(item)]
    if isinstance(value, list):
        return [message for item in value for message in _flat(item)]
    return [str(value)]


def api_error_messages(detail) -> dict[str | None, list[str]]:
    """A DRF ValidationError's detail as {field or None: [message, ...]} (nested items flattened)."""
    if isinstance(detail, dict):
        return {field: _flat(messages) for field, messages in detail.items()}
    return {None: _flat(detail)}


class ApiValidatedForm(forms.Form):
    """Parses a browser's post, then validates it with `serializer_class`, the API's serializer."""

    serializer_class: type[serializers.Serializer]
    partial = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.validated: dict = {}

    def api_data(self, cleaned: dict) -> dict:
        """The cleaned values as the API's JSON body would carry them."""
        return dict(cleaned)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        serializer = self.serializer_class(data=self.api_data(cleaned), partial=self.partial)
        if serializer.is_valid():
            self.validated = dict(serializer.validated_data)
        else:
            self.add_api_errors(serializer.errors)
        return cleaned

    def add_api_errors(self, detail) -> None:
        """Shows what the serializer or a service refused next to the field it is about."""
        for field, messages in api_error_messages(detail).items():
            target = field if field in self.fields else None
            named = target is None and field not in (None, "non_field_errors")
            for message in messages:
                self.add_error(target, f"{field}: {message}" if named else message)


class PatientLocalDateTimeField(forms.DateTimeField):
    """A `datetime-local` input read as the patient's wall-clock time. A time that does not exist
    that day (the spring-forward gap) or exists twice (the fall-back hour) is refused, so nobody
    books a session at an instant they did not mean."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT_FORMAT)
    input_formats = [LOCAL_INPUT_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]

    def __init__(self, *, zone: zoneinfo.ZoneInfo | None = None, **kwargs):
        super().__init__(**kwargs)
        self.zone = zone or timezone.get_current_timezone()

    def to_python(self, value):
        with timezone.override(self.zone):
            return super().to_python(value)

    def prepare_value(self, value):
        with timezone.override(self.zone):
            return super().prepare_value(value)


def _session_limits(name: str) -> dict:
    field = SessionSerializer().fields[name]
    return {"min": field.min_value, "max": field.max_value}


class _PatientZoneForm(ApiValidatedForm):
    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        self.fields["starts_at"].zone = patient.zone
        self.fields[
            "starts_at"
        ].help_text = f"In {patient.display_name}'s time zone, {patient.timezone}, whatever your own clock says."

    def api_data(self, cleaned: dict) -> dict:
        data = dict(cleaned)
        data["starts_at"] = cleaned["starts_at"].isoformat()
        return data


class SessionForm(_PatientZoneForm):
    """A new therapy session: the fields of POST /api/v1/patients/{id}/sessions/."""

    serializer_class = SessionSerializer

    kind = forms.ChoiceField(choices=SessionKind.choices, label="Kind of session")
    starts_at = PatientLocalDateTimeField(label="Starts at")
    duration_minutes = forms.IntegerField(
        label="Duration (minutes)", initial=60, widget=forms.NumberInput(attrs=_session_limits("duration_minutes"))
    )
    route = forms.ChoiceField(choices=[("", "None")] + KetamineRoute.choices, required=False, label="Ketamine route")
    dose_mg = forms.DecimalField(
        required=False,
        label="Ketamine dose (mg)",
        widget=forms.NumberInput(attrs={"step": "0.1", **_session_limits("dose_mg")}),
    )
    notes = forms.CharField(
        required=False,
        label="Notes (care team only)",
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": SessionSerializer().fields["notes"].max_length}),
    )

    def api_data(self, cleaned: dict) -> dict:
        data = super().api_data(cleaned)
        data["route"] = cleaned.get("route") or None
        dose = cleaned.get("dose_mg")
        # The API's dose is a JSON number: an int or a float, never text.
        data["dose_mg"] = None if dose is None else (int(dose) if dose == dose.to_integral_value() else float(dose))
        return data


class SessionMoveForm(_PatientZoneForm):
    """A new start for a session: a PATCH of `starts_at` alone."""

    serializer_class = SessionSerializer
    partial = True

    starts_at = PatientLocalDateTimeField(label="New start")


class PatientEnrollForm(ApiValidatedForm):
    """A new patient: the body of POST /api/v1/patients/."""

    serializer_class = PatientCreateSerializer

    display_name = forms.CharField(
        label="Name shown to the care team",
        help_text="A first name or a pseudonym is enough.",
        widget=forms.TextInput(attrs={"maxlength": PatientCreateSerializer().fields["display_name"].max_length}),
    )
    timezone = forms.ChoiceField(
        label="Time zone",
        help_text="Where the patient lives (IANA name): reminders and journal days follow it.",
    )
    substances = forms.MultipleChoiceField(
        choices=[(s, s.capitalize()) for s in SUBSTANCES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Substances in treatment",
    )
    # Ties a post to the page it came from, so submitting the same page twice (a reload, a
    # double click) does not enroll the same person twice.
    submission = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("submission", uuid.uuid4())
        super().__init__(*args, **kwargs)
        zones = sorted(zoneinfo.available_timezones())
        self.fields["timezone"].choices = [("", "Choose a time zone")] + [(zone, zone) for zone in zones]

    def api_data(self, cleaned: dict) -> dict:
        return {k: cleaned[k] for k in ("display_name", "timezone", "substances")}


class AlertAcknowledgeForm(ApiValidatedForm):
    serializer_class = AlertAcknowledgeSerializer

    note = forms.CharField(
        required=False, label="Note (optional)", widget=forms.Textarea(attrs={"rows": 2, "maxlength": NOTE_MAX})
    )


class AlertResolveForm(ApiValidatedForm):
    serializer_class = AlertResolveSerializer

    note = forms.CharField(
        label="How it was resolved",
        error_messages={"required": "Say how this alert was resolved: the note is required."},
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": NOTE_MAX}),
    )


UNRESOLVED = "unresolved"
ANY = "any"


class AlertFilterForm(forms.Form):
    """The inbox's filters; the default is what still needs someone: open and acknowledged."""

    status = forms.ChoiceField(
        choices=[(UNRESOLVED, "Open and acknowledged"), *AlertStatus.choices, (ANY, "Any status")],
        required=False,
        label="Status",
    )
    severity = forms.ChoiceField(
        choices=[("", "Any severity"), *reversed(AlertSeverity.choices)], required=False, label="Severity"
    )
    patient = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def filters(self) -> dict:
        """{status, exclude_resolved, severity, patient_id} for the selector; defaults when invalid."""
        data = self.cleaned_data if self.is_valid() else {}
        status = data.get("status") or UNRESOLVED
        return {
            "status": status if status in AlertStatus.values else None,
            "exclude_resolved": status == UNRESOLVED,
            "severity": data.get("severity") or None,
            "patient_id": data.get("patient"),
        }


class AuditFilterForm(forms.Form):
    """The filters of GET /api/v1/audit/ under the same names, with people to pick from instead of
    ids to paste."""

    patient = forms.ChoiceField(required=False, label="Patient")
    actor = forms.ChoiceField(required=False, label="Who")

    def __init__(self, *args, patients, actors, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["patient"].choices = [("", "Every patient")] + [(str(p.pk), p.display_name) for p in patients]
        self.fields["actor"].choices = [("", "Everyone")] + [(str(u.pk), u.display_name or u.email) for u in actors]
        # `from` is a Python keyword, so the two days are declared here (as in AuditFilterSerializer).
        for name, label in (("from", "From (UTC day)"), ("to", "To (UTC day)")):
            self.fields[name] = forms.DateField(
                required=False, label=label, widget=forms.DateInput(attrs={"type": "date"})
            )

    def filters(self) -> dict:
        """Keyword arguments of `access_log_for_clinic`; none when the form is invalid."""
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "patient": data.get("patient") or None,
            "actor": data.get("actor") or None,
            "from_date": data.get("from"),
            "to_date": data.get("to"),
        }
