"""Alerts API (SPEC §9): the care team's inbox, acknowledge and resolve.

Clinicians only (a patient token is a 403 before any lookup); an alert of a patient outside the
reader's care teams is a 404. Every request writes one access-log row per patient it touched, in
one bulk insert (SPEC §11).
"""

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AccessAction
from accounts.permissions import IsClinician
from accounts.services import access_log_record
from backend.api.pagination import cursor_pagination
from journal.models import Alert, AlertSeverity, AlertStatus
from journal.selectors.alerts import alerts_visible_to
from journal.serializers.alerts import (
    AlertAcknowledgeSerializer,
    AlertFilterSerializer,
    AlertResolveSerializer,
    AlertSerializer,
)
from journal.services.alerts import alert_acknowledge, alert_resolve


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class AlertListView(generics.ListAPIView):
    permission_classes = [IsClinician]
    serializer_class = AlertSerializer
    pagination_class = cursor_pagination("-opened_at", "-id")

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=AlertStatus.values),
            OpenApiParameter("severity", str, enum=AlertSeverity.values),
            OpenApiParameter("patient", str, description="Only this patient's alerts (UUID)."),
        ],
        description="Alerts of the patients on your care teams, newest first (by `opened_at`).",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        # An empty parameter (`?status=`) means no filter, as the dashboard's forms send it.
        filters = _valid(AlertFilterSerializer, {k: v for k, v in self.request.query_params.items() if v != ""})
        return alerts_visible_to(
            self.request.user,
            status=filters.get("status"),
            severity=filters.get("severity"),
            patient_id=filters.get("patient"),
        )

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        patients = list(dict.fromkeys(alert.patient_id for alert in page))
        access_log_record(self.request, patients=patients, action=AccessAction.LIST)
        return page


class AlertView(APIView):
    permission_classes = [IsClinician]

    def _alert(self, alert_id, action: str) -> Alert:
        alert = get_object_or_404(alerts_visible_to(self.request.user), pk=alert_id)
        access_log_record(self.request, patients=[alert.patient_id], action=action)
        return alert


class AlertDetailView(AlertView):
    @extend_schema(responses={200: AlertSerializer})
    def get(self, request, alert_id):
        return Response(AlertSerializer(self._alert(alert_id, AccessAction.VIEW)).data)


class AlertAcknowledgeView(AlertView):
    extra_error_statuses = (409,)

    @extend_schema(
        request=AlertAcknowledgeSerializer,
        responses={200: AlertSerializer},
        description="open → acknowledged; who and when are kept. 409 when it is already acknowledged or resolved.",
    )
    def post(self, request, alert_id):
        alert = self._alert(alert_id, AccessAction.UPDATE)  # before the body: outsiders learn nothing
        data = _valid(AlertAcknowledgeSerializer, request.data)
        alert = alert_acknowledge(alert=alert, by=request.user, note=data["note"])
        return Response(AlertSerializer(alert).data)


class AlertResolveView(AlertView):
    extra_error_statuses = (409,)

    @extend_schema(
        request=AlertResolveSerializer,
        responses={200: AlertSerializer},
        description=(
            "open or acknowledged → resolved, with a note (required); who and when are kept. Resolving an open "
            "alert leaves `acknowledged_*` empty. 409 when it is already resolved."
        ),
    )
    def post(self, request, alert_id):
        alert = self._alert(alert_id, AccessAction.UPDATE)
        data = _valid(AlertResolveSerializer, request.data)
        alert = alert_resolve(alert=alert, by=request.user, note=data["note"])
        return Response(AlertSerializer(alert).data)


urlpatterns = [
    path("alerts/", AlertListView.as_view(), name="alerts"),
    path("alerts/<uuid:alert_id>/", AlertDetailView.as_view(), name="alert-detail"),
    path("alerts/<uuid:alert_id>/acknowledge/", AlertAcknowledgeView.as_view(), name="alert-acknowledge"),
    path("alerts/<uuid:alert_id>/resolve/", AlertResolveView.as_view(), name="alert-resolve"),
]
