from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/token/", api.LoginView.as_view(), name="auth-token"),
    path("auth/token/refresh/", api.RefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout/", api.LogoutView.as_view(), name="auth-logout"),
    path("auth/enroll/", api.EnrollView.as_view(), name="auth-enroll"),
    path("auth/password-reset/", api.PasswordResetView.as_view(), name="auth-password-reset"),
    path("auth/password-reset/confirm/", api.PasswordResetConfirmView.as_view(), name="auth-password-reset-confirm"),
    path("consent/", api.ConsentView.as_view(), name="consent"),
    path("me/", api.MeView.as_view(), name="me"),
    path("me/password/", api.PasswordChangeView.as_view(), name="me-password"),
    path("me/access-log/", api.MyAccessLogView.as_view(), name="me-access-log"),
    path("patients/<uuid:patient_id>/", api.PatientDetailView.as_view(), name="patient-detail"),
    path("patients/<uuid:patient_id>/enrollment/", api.PatientEnrollmentView.as_view(), name="patient-enrollment"),
    path("patients/<uuid:patient_id>/care-team/", api.CareTeamView.as_view(), name="patient-care-team"),
    path("audit/", api.AuditView.as_view(), name="audit"),
]
