from django.urls import include, path

from dashboard.views import pages, password_reset, workflows

app_name = "dashboard"
urlpatterns = [
    path("", pages.triage, name="triage"),
    path("patients/<uuid:patient_id>/", pages.patient, name="patient"),
    # Sign-in, two-factor enrolment and sign-out.
    path("", include("dashboard.auth_urls")),
    # Where the password-reset email links: patients and staff alike (SPEC §4).
    path("reset-password/", password_reset.password_reset, name="password-reset"),
    # Acting on alerts, sessions, enrollment; the access log.
    path("alerts/", workflows.alert_inbox, name="alerts"),
    path("alerts/<uuid:alert_id>/acknowledge/", workflows.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<uuid:alert_id>/resolve/", workflows.alert_resolve, name="alert-resolve"),
    path("patients/<uuid:patient_id>/sessions/", workflows.sessions, name="sessions"),
    path("sessions/<uuid:session_id>/move/", workflows.session_move, name="session-move"),
    path("sessions/<uuid:session_id>/cancel/", workflows.session_cancel, name="session-cancel"),
    path("patients/new/", workflows.patient_enroll, name="patient-enroll"),
    path("patients/<uuid:patient_id>/enrollment/", workflows.enrollment_code, name="enrollment-code"),
    path("audit/", workflows.access_log, name="audit"),
]
