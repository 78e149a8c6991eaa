"""Journal entries API (SPEC §5): the patient's own entries, sync and changes; clinician reads."""

import base64
import binascii

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import CareTeamPatientMixin, IsPatient
from backend.api.errors import flatten_details
from backend.api.exceptions import PayloadTooLarge, PreconditionFailed
from backend.api.fields import StrictDateField
from backend.api.pagination import cursor_pagination
from journal.models import EntryKind
from journal.selectors import entries as selectors
from journal.serializers.entries import (
    ChangesResponseSerializer,
    EntryInputSerializer,
    EntryRevisionSerializer,
    EntrySerializer,
    EntryWithSupportSerializer,
    SyncItemSerializer,
    SyncRequestSerializer,
    SyncResponseSerializer,
)
from journal.services import entries as services

MAX_SYNC_ITEMS = 500
CHANGES_PAGE = 200


class EntryFilterSerializer(serializers.Serializer):
    to = StrictDateField(required=False)
    kind = serializers.ChoiceField(choices=EntryKind.choices, required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = StrictDateField(required=False)  # a Python keyword, so declared here
        return fields


FILTER_PARAMETERS = [
    OpenApiParameter("from", str, description="First journal day (YYYY-MM-DD)."),
    OpenApiParameter("to", str, description="Last journal day (YYYY-MM-DD)."),
    OpenApiParameter("kind", str, enum=EntryKind.values),
]


def _filtered(patient, query_params):
    filters = EntryFilterSerializer(data=query_params)
    filters.is_valid(raise_exception=True)
    data = filters.validated_data
    return selectors.entries_of(patient, from_date=data.get("from"), to_date=data.get("to"), kind=data.get("kind"))


def _if_match(request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise PreconditionFailed('If-Match must be the entry\'s ETag, e.g. "3".')
    return int(value)


def _with_etag(response: Response, version: int) -> Response:
    response["ETag"] = f'"{version}"'
    return response


def _entry_body(entry, support=None) -> dict:
    body = EntrySerializer(entry).data
    if support:
        body["support"] = support
    return body


class PatientEntryView(APIView):
    permission_classes = [IsPatient]

    @property
    def patient(self):
        return self.request.user.patient


class EntryListCreateView(PatientEntryView, generics.GenericAPIView):
    serializer_class = EntrySerializer
    pagination_class = cursor_pagination("-occurred_at", "-id")
    extra_error_statuses = (409,)

    @extend_schema(parameters=FILTER_PARAMETERS, responses={200: EntrySerializer(many=True)})
    def get(self, request):
        page = self.paginate_queryset(_filtered(self.patient, request.query_params))
        return self.get_paginated_response(EntrySerializer(page, many=True).data)

    @extend_schema(
        request=EntryInputSerializer,
        responses={
            201: EntryWithSupportSerializer,
            200: OpenApiResponse(EntrySerializer, description="A safe retry: the stored entry."),
        },
    )
    def post(self, request):
        serializer = EntryInputSerializer(data=request.data, context={"patient": self.patient})
        serializer.is_valid(raise_exception=True)
        entry, created, support = services.entry_create(patient=self.patient, data=serializer.validated_data)
        response = Response(_entry_body(entry, support), status=status.HTTP_201_CREATED if created else 200)
        return _with_etag(response, entry.version)


class EntryDetailView(PatientEntryView):
    extra_error_statuses = (412,)

    @extend_schema(responses={200: EntrySerializer})
    def get(self, request, entry_id):
        entry = selectors.entry_of(self.patient, entry_id)
        if entry is None:
            raise NotFound()
        return _with_etag(Response(EntrySerializer(entry).data), entry.version)

    @extend_schema(
        request=EntryInputSerializer(partial=True),
        responses={200: EntryWithSupportSerializer},
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, description='The ETag, e.g. "3".')],
    )
    def patch(self, request, entry_id):
        serializer = EntryInputSerializer(data=request.data, partial=True, context={"patient": self.patient})
        serializer.is_valid(raise_exception=True)
        changes = {key: value for key, value in serializer.validated_data.items() if key != "id"}
        entry, support = services.entry_update(
            patient=self.patient, entry_id=entry_id, changes=changes, if_match=_if_match(request)
        )
        return _with_etag(Response(_entry_body(entry, support)), entry.version)

    @extend_schema(
        responses={204: None},
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, description='The ETag, e.g. "3".')],
    )
    def delete(self, request, entry_id):
        services.entry_delete(patient=self.patient, entry_id=entry_id, if_match=_if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EntrySyncView(PatientEntryView):
    @extend_schema(request=SyncRequestSerializer, responses={200: SyncResponseSerializer})
    def post(self, request):
        raw = request.data.get("entries") if isinstance(request.data, dict) else None
        if isinstance(raw, list) and len(raw) > MAX_SYNC_ITEMS:
            raise PayloadTooLarge(f"A sync batch holds at most {MAX_SYNC_ITEMS} entries; split it.")
        envelope = SyncRequestSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        # One serializer validates every item: building a serializer's fields per item was two
        # thirds of a 500-entry sync's CPU.
        validator = SyncItemSerializer(context={"patient": self.patient})
        items = [self._validated(validator, item) for item in envelope.validated_data["entries"]]
        result = services.entries_sync(patient=self.patient, items=items)
        return Response(SyncResponseSerializer(result).data)

    @staticmethod
    def _validated(validator: SyncItemSerializer, raw) -> dict:
        try:
            return {"data": validator.run_validation(raw)}
        except ValidationError as error:
            messages, codes = flatten_details(ValidationError(error.detail).get_full_details())
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        return {"id": raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None,
                "errors": {"fields": messages, "field_codes": codes}}  # fmt: skip


class EntryChangesView(PatientEntryView):
    @extend_schema(
        parameters=[OpenApiParameter("cursor", str, description="The `cursor` of the previous answer; none at first.")],
        responses={200: ChangesResponseSerializer},
    )
    def get(self, request):
        after = _decode_cursor(request.query_params.get("cursor"))
        rows, has_more = selectors.changes_since(self.patient, after, limit=CHANGES_PAGE)
        results = [{"id": str(e.id), "deleted": True} if e.is_deleted else EntrySerializer(e).data for e in rows]
        last = rows[-1].change_seq if rows else after
        return Response({"results": results, "cursor": _encode_cursor(last), "has_more": has_more})


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        prefix, _, seq = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        if prefix != "c1" or not seq.isdigit():
            raise ValueError
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError({"cursor": ["This cursor is not one we gave out."]}, code="invalid") from None


# --- Clinician reads ----------------------------------------------------------------------------


class PatientEntriesView(CareTeamPatientMixin, generics.GenericAPIView):
    serializer_class = EntrySerializer
    pagination_class = cursor_pagination("-occurred_at", "-id")

    @extend_schema(parameters=FILTER_PARAMETERS, responses={200: EntrySerializer(many=True)})
    def get(self, request, patient_id):
        page = self.paginate_queryset(_filtered(self.get_patient(), request.query_params))
        return self.get_paginated_response(EntrySerializer(page, many=True).data)


class PatientEntryRevisionsView(CareTeamPatientMixin, APIView):
    @extend_schema(responses={200: EntryRevisionSerializer(many=True)})
    def get(self, request, patient_id, entry_id):
        entry = get_object_or_404(selectors.entries_of(self.get_patient()), pk=entry_id)
        return Response(EntryRevisionSerializer(selectors.revisions_of(entry), many=True).data)


urlpatterns = [
    path("entries/", EntryListCreateView.as_view(), name="entries"),
    path("entries/sync/", EntrySyncView.as_view(), name="entries-sync"),
    path("entries/changes/", EntryChangesView.as_view(), name="entries-changes"),
    path("entries/<uuid:entry_id>/", EntryDetailView.as_view(), name="entry-detail"),
    path("patients/<uuid:patient_id>/entries/", PatientEntriesView.as_view(), name="patient-entries"),
    path(
        "patients/<uuid:patient_id>/entries/<uuid:entry_id>/revisions/",
        PatientEntryRevisionsView.as_view(),
        name="patient-entry-revisions",
    ),
]
