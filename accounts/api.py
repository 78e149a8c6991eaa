"""Accounts API (SPEC §4, §11): thin views over services and selectors."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.models import AccessAction, User
from accounts.permissions import CareTeamPatientMixin, IsClinicAdmin, IsClinician, IsPatient
from accounts.schema import LOGIN_401
from accounts.serializers import (
    AccessLogSerializer,
    AuditFilterSerializer,
    CareTeamChangeSerializer,
    CareTeamMemberSerializer,
    ConsentSerializer,
    EnrollmentSerializer,
    EnrollSerializer,
    LoginResponseSerializer,
    LoginSerializer,
    MeSerializer,
    MeUpdateSerializer,
    OwnAccessLogSerializer,
    PasswordChangeSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetSerializer,
    PatientCreatedSerializer,
    PatientCreateSerializer,
    PatientSerializer,
    PatientUpdateSerializer,
    RefreshSerializer,
    TokenPairSerializer,
)
from backend.api.pagination import cursor_pagination
from backend.api.throttles import EnrollmentThrottle, PasswordResetThrottle


def _login_body(user: User, pair) -> dict:
    return {"access": pair.access, "refresh": pair.refresh, "user": MeSerializer(user).data}


def _valid(serializer_class, data, **context):
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PublicAPIView(APIView):
    """No authentication at all: a stale access token in the header must not turn these into 401s."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


# --- Auth ---------------------------------------------------------------------------------------


class LoginView(PublicAPIView):
    extra_error_statuses = (401,)

    @extend_schema(request=LoginSerializer, responses={200: LoginResponseSerializer, 401: LOGIN_401})
    def post(self, request):
        data = _valid(LoginSerializer, request.data)
        user, pair = services.login(
            email=data["email"], password=data["password"], otp=data.get("otp", ""), request=request
        )
        return Response(_login_body(user, pair))

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if response is not None and response.status_code == 401:
            # The two-factor answers are 401s with their own codes; they name the scheme like the rest.
            response.headers.setdefault("WWW-Authenticate", 'Bearer realm="api"')
        return response


class RefreshView(PublicAPIView):
    extra_error_statuses = (401,)

    @extend_schema(request=RefreshSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        data = _valid(RefreshSerializer, request.data)
        pair = services.token_refresh(raw_refresh=data["refresh"])
        return Response({"access": pair.access, "refresh": pair.refresh})


class LogoutView(APIView):
    @extend_schema(request=RefreshSerializer, responses={204: None})
    def post(self, request):
        data = _valid(RefreshSerializer, request.data)
        services.sign_out(user=request.user, raw_refresh=data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class EnrollView(PublicAPIView):
    throttle_classes = [EnrollmentThrottle]

    @extend_schema(request=EnrollSerializer, responses={201: LoginResponseSerializer})
    def post(self, request):
        data = _valid(EnrollSerializer, request.data)
        user, pair = services.patient_enroll(
            code=data["code"],
            email=data["email"],
            password=data["password"],
            consent_version=data["consent_version"],
            request=request,
        )
        return Response(_login_body(user, pair), status=status.HTTP_201_CREATED)


class ConsentView(PublicAPIView):
    throttle_classes = [EnrollmentThrottle]

    @extend_schema(
        parameters=[OpenApiParameter("code", str, required=True, description="The enrollment code.")],
        responses={200: ConsentSerializer},
    )
    def get(self, request):
        code = request.query_params.get("code", "")
        if not code or len(code) > 64:
            raise ValidationError({"code": ["Give the enrollment code."]}, code="required")
        enrollment = services.enrollment_code_live(code)
        clinic = enrollment.patient.clinic
        consent = clinic.current_consent()
        if consent is None:
            raise ValidationError({"code": ["This clinic has not published its consent text yet."]}, code="no_consent")
        return Response(
            {"version": consent.version, "text": consent.text, "clinic": {"id": str(clinic.pk), "name": clinic.name}}
        )


class PasswordResetView(PublicAPIView):
    throttle_classes = [PasswordResetThrottle]

    @extend_schema(
        request=PasswordResetSerializer, responses={202: OpenApiResponse(description="Always the same answer.")}
    )
    def post(self, request):
        data = _valid(PasswordResetSerializer, request.data)
        services.password_reset_request(email=data["email"])
        return Response(
            {"detail": "If an account uses this address, a reset link is on its way."}, status=status.HTTP_202_ACCEPTED
        )


class PasswordResetConfirmView(PublicAPIView):
    throttle_classes = [PasswordResetThrottle]

    @extend_schema(request=PasswordResetConfirmSerializer, responses={204: None})
    def post(self, request):
        data = _valid(PasswordResetConfirmSerializer, request.data)
        services.password_reset_confirm(token=data["token"], password=data["password"])
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Me -----------------------------------------------------------------------------------------


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: MeSerializer})
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(request=MeUpdateSerializer, responses={200: MeSerializer})
    def patch(self, request):
        data = _valid(MeUpdateSerializer, request.data, request=request)
        user = services.profile_update(user=request.user, **data)
        return Response(MeSerializer(user).data)

    @extend_schema(responses={204: None}, description="Patients only: deactivate the account.")
    def delete(self, request):
        if not request.user.is_patient:
            self.permission_denied(request, message="Only patients can deactivate their own account here.")
        services.account_deactivate(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    @extend_schema(request=PasswordChangeSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        data = _valid(PasswordChangeSerializer, request.data)
        pair = services.password_change(
            user=request.user,
            current_password=data["current_password"],
            new_password=data["new_password"],
            request=request,
        )
        return Response({"access": pair.access, "refresh": pair.refresh})


class MyAccessLogView(generics.ListAPIView):
    permission_classes = [IsPatient]
    serializer_class = OwnAccessLogSerializer
    pagination_class = cursor_pagination("-at", "-id")

    def get_queryset(self):
        return selectors.access_log_for_patient(self.request.user.patient)


# --- Patients (clinicians) ----------------------------------------------------------------------


class PatientCreateView(APIView):
    """POST /api/v1/patients/: a clinician adds a patient. The same path's GET, the triage list,
    needs journal and reminders data, so the dashboard app serves the path with a subclass."""

    permission_classes = [IsClinician]

    @extend_schema(request=PatientCreateSerializer, responses={201: PatientCreatedSerializer})
    def post(self, request):
        data = _valid(PatientCreateSerializer, request.data)
        patient, code, expires_at = services.patient_create(
            clinician=request.user,
            display_name=data["display_name"],
            timezone_name=data["timezone"],
            substances=data["substances"],
        )
        services.access_log_record(request, patients=[patient], action=AccessAction.CREATE)
        patient.enrollment = {"code": code, "expires_at": expires_at}
        return Response(PatientCreatedSerializer(patient).data, status=status.HTTP_201_CREATED)


class PatientDetailView(CareTeamPatientMixin, APIView):
    @extend_schema(responses={200: PatientSerializer})
    def get(self, request, patient_id):
        return Response(PatientSerializer(self.get_patient()).data)

    @extend_schema(request=PatientUpdateSerializer, responses={200: PatientSerializer})
    def patch(self, request, patient_id):
        data = _valid(PatientUpdateSerializer, request.data)
        patient = services.patient_update(patient=self.get_patient(), **data)
        return Response(PatientSerializer(patient).data)


class PatientEnrollmentView(CareTeamPatientMixin, APIView):
    @extend_schema(request=None, responses={201: EnrollmentSerializer})
    def post(self, request, patient_id):
        code, expires_at = services.enrollment_code_issue(patient=self.get_patient(), issued_by=request.user)
        return Response({"code": code, "expires_at": expires_at}, status=status.HTTP_201_CREATED)


class CareTeamView(APIView):
    """Clinic admins manage care teams of every patient in their clinic."""

    permission_classes = [IsClinicAdmin]

    def _patient(self, request, patient_id):
        patient = get_object_or_404(selectors.patients_managed_by(request.user), pk=patient_id)
        action = {"GET": AccessAction.VIEW}.get(request.method, AccessAction.UPDATE)
        services.access_log_record(request, patients=[patient], action=action)
        return patient

    def _members(self, patient):
        return CareTeamMemberSerializer(patient.care_team.order_by("display_name", "id"), many=True).data

    @extend_schema(responses={200: CareTeamMemberSerializer(many=True)})
    def get(self, request, patient_id):
        return Response(self._members(self._patient(request, patient_id)))

    @extend_schema(request=CareTeamChangeSerializer, responses={201: CareTeamMemberSerializer(many=True)})
    def post(self, request, patient_id):
        data = _valid(CareTeamChangeSerializer, request.data)
        patient = self._patient(request, patient_id)
        clinician = selectors.clinicians_of_clinic(patient.clinic_id).filter(pk=data["clinician"]).first()
        if clinician is None:
            raise ValidationError({"clinician": ["No such clinician in this clinic."]}, code="does_not_exist")
        services.care_team_add(patient=patient, clinician=clinician, added_by=request.user)
        return Response(self._members(patient), status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("clinician", str, required=True, description="The clinician to remove (UUID).")],
        responses={204: None},
    )
    def delete(self, request, patient_id):
        data = _valid(CareTeamChangeSerializer, {"clinician": request.query_params.get("clinician")})
        patient = self._patient(request, patient_id)
        services.care_team_remove(patient=patient, clinician_id=data["clinician"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditView(generics.ListAPIView):
    permission_classes = [IsClinicAdmin]
    serializer_class = AccessLogSerializer
    pagination_class = cursor_pagination("-at", "-id")

    @extend_schema(
        parameters=[
            OpenApiParameter("patient", str, description="Patient id."),
            OpenApiParameter("actor", str, description="User id of the clinician."),
            OpenApiParameter("from", str, description="First day (YYYY-MM-DD, UTC)."),
            OpenApiParameter("to", str, description="Last day (YYYY-MM-DD, UTC)."),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = _valid(AuditFilterSerializer, self.request.query_params)
        return selectors.access_log_for_clinic(
            admin=self.request.user,
            patient=filters.get("patient"),
            actor=filters.get("actor"),
            from_date=filters.get("from"),
            to_date=filters.get("to"),
        )
