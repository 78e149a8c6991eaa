"""Exports (SPEC §10), all streamed: the patient's own, the care team's of one patient (CSV, JSON or a
FHIR Bundle), and the clinic admin's CSV of every entry of the clinic."""

import uuid

from django.db import connection, transaction
from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from accounts.models import AccessAction
from accounts.permissions import CareTeamPatientMixin, IsClinicAdmin, IsPatient
from accounts.services import access_log_record
from backend.api.fields import StrictDateField
from journal import fhir
from journal.exports import REDISCLOSURE_NOTICE, csv_stream, stream_csv, stream_json, stream_json_object
from journal.selectors.exports import (
    CLINIC_EXPORT_COLUMNS,
    EXPORT_CSV_COLUMNS,
    care_team_export_rows,
    care_team_export_sections,
    clinic_export_patient_ids,
    clinic_export_rows,
    fhir_export_records,
    own_export_rows,
    own_export_sections,
)


class StreamingExportView(APIView):
    """`?format=` names the file format here, not a DRF renderer, so negotiation is bypassed."""

    formats: tuple[str, ...] = ()

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type

    def export_format(self, request) -> str:
        chosen = request.query_params.get("format") or self.formats[0]
        if chosen not in self.formats:
            raise ValidationError({"format": [f"Choose one of: {', '.join(self.formats)}."]}, code="invalid_choice")
        return chosen


def streaming_response(content, *, content_type: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


class MyExportView(StreamingExportView):
    permission_classes = [IsPatient]
    formats = ("json", "csv")

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"], description="Default json.")],
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="meta, profile, entries, …"),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="Notice line, header, one row a record."),
        },
    )
    def get(self, request):
        patient = request.user.patient
        stamp = timezone.now().strftime("%Y%m%d")
        if self.export_format(request) == "csv":
            return streaming_response(
                stream_csv(EXPORT_CSV_COLUMNS, own_export_rows(patient)),
                content_type="text/csv; charset=utf-8",
                filename=f"interlude-journal-{stamp}.csv",
            )
        meta = {"notice": REDISCLOSURE_NOTICE, "generated_at": timezone.now(), "patient_id": str(patient.pk)}
        return streaming_response(
            stream_json(meta, own_export_sections(patient)),
            content_type="application/json",
            filename=f"interlude-journal-{stamp}.json",
        )


class PatientExportView(CareTeamPatientMixin, StreamingExportView):
    """One patient's record as the care team sees it: entry notes and revisions, session notes."""

    formats = ("json", "csv", "fhir")
    access_action = AccessAction.EXPORT

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(formats), description="Default json.")],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="`meta` (with the redisclosure `notice`), `profile`, `consents`, `entries`, "
                "`entry_revisions`, `assessments`, `sessions` (with the care team's `notes`).",
            ),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The redisclosure notice as the first line, a header, one row a record "
                "(`record_type`: entry, entry_revision, assessment, session).",
            ),
            (200, "application/fhir+json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="A FHIR R4 Bundle of type `collection`: a pseudonymous Patient, survey "
                "Observations, QuestionnaireResponses with total-score Observations. The notice is in "
                "`meta` (42 CFR Part 2 security labels and an extension with its text).",
            ),
        },
    )
    def get(self, request, patient_id):
        patient = self.get_patient()  # before the format: an outsider learns nothing from a 400
        chosen = self.export_format(request)
        stamp = timezone.now().strftime("%Y%m%d")
        name = f"interlude-patient-{patient.pk}-{stamp}"
        if chosen == "csv":
            return streaming_response(
                stream_csv(EXPORT_CSV_COLUMNS, care_team_export_rows(patient)),
                content_type="text/csv; charset=utf-8",
                filename=f"{name}.csv",
            )
        if chosen == "fhir":
            entries, assessments = fhir_export_records(patient)
            shell = fhir.bundle_shell(
                bundle_id=str(uuid.uuid4()), generated_at=timezone.now(), notice=REDISCLOSURE_NOTICE
            )
            resources = fhir.bundle_entries(patient_id=str(patient.pk), entries=entries, assessments=assessments)
            return streaming_response(
                stream_json_object(shell, {"entry": resources}),
                content_type="application/fhir+json",
                filename=f"{name}.fhir.json",
            )
        meta = {"notice": REDISCLOSURE_NOTICE, "generated_at": timezone.now(), "patient_id": str(patient.pk)}
        return streaming_response(
            stream_json(meta, care_team_export_sections(patient)),
            content_type="application/json",
            filename=f"{name}.json",
        )


class ClinicExportFilterSerializer(serializers.Serializer):
    to = StrictDateField(required=False)
    include_notes = serializers.BooleanField(required=False, default=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = StrictDateField(required=False)  # a Python keyword, so declared here
        return fields

    def validate(self, attrs):
        if attrs.get("from") and attrs.get("to") and attrs["from"] > attrs["to"]:
            raise ValidationError({"to": ["Must not be before `from`."]}, code="to_before_from")
        return attrs


def _in_one_transaction(chunks):
    """On PostgreSQL the export reads inside a transaction, so its server-side cursor streams rather
    than being materialised first (see clinic_export_rows). Not on SQLite: there a transaction takes
    the write lock (IMMEDIATE) and would stall the journal for as long as the download lasts."""
    if connection.vendor != "postgresql":
        yield from chunks
        return
    with transaction.atomic():
        yield from chunks


class ClinicEntriesExportView(APIView):
    """Every live entry of the admin's clinic, as CSV. The one clinical read an admin may make outside
    their care teams (SPEC §1), so each patient in it is access-logged before the first byte."""

    permission_classes = [IsClinicAdmin]

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type  # the route names its format; errors are JSON

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, description="First journal day (YYYY-MM-DD)."),
            OpenApiParameter("to", str, description="Last journal day (YYYY-MM-DD), not before `from`."),
            OpenApiParameter("include_notes", bool, description="Add the decrypted `note` column. Default false."),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The redisclosure notice as the first line, then a header: "
                + ", ".join(CLINIC_EXPORT_COLUMNS)
                + " (and `note` on request). Patients appear by id only. Deleted entries are left out.",
            )
        },
    )
    def get(self, request):
        filters = ClinicExportFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        clinic_id = request.user.clinic_id
        span = {"from_date": data.get("from"), "to_date": data.get("to")}
        patients = clinic_export_patient_ids(clinic_id, **span)
        access_log_record(request, patients=patients, action=AccessAction.EXPORT)
        with_notes = data["include_notes"]
        columns = [*CLINIC_EXPORT_COLUMNS, "note"] if with_notes else CLINIC_EXPORT_COLUMNS
        rows = clinic_export_rows(clinic_id, patient_ids=patients, with_notes=with_notes, **span)
        return streaming_response(
            _in_one_transaction(csv_stream(columns, rows, batch=2000)),
            content_type="text/csv; charset=utf-8",
            filename=f"interlude-entries-{timezone.now():%Y%m%d}.csv",
        )


urlpatterns = [
    path("me/export/", MyExportView.as_view(), name="me-export"),
    path("patients/<uuid:patient_id>/export/", PatientExportView.as_view(), name="patient-export"),
    path("exports/entries.csv", ClinicEntriesExportView.as_view(), name="clinic-entries-export"),
]
