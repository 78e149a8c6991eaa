"""Pages that act: the alert inbox, sessions, enrolling a patient, the access log (issue 6).

Thin views over the services and selectors the JSON API uses, with its rules: a patient outside the
reader's care teams is a 404 (looked up before any form is read, so an outsider learns nothing from a
validation error), and every request that reads or changes a patient's data writes its access-log
rows in one insert, with the action the matching API view records.
"""

from datetime import date, datetime
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.exceptions import NotFound, ValidationError

from accounts.models import AccessAction, Patient
from accounts.selectors import access_log_for_clinic, clinicians_of_clinic, patients_managed_by, patients_visible_to
from accounts.services import access_log_record, enrollment_code_issue, patient_create
from backend.api.exceptions import Conflict
from dashboard.auth import clinic_admin_required, clinician_required
from dashboard.workflow_forms import (
    LOCAL_INPUT_FORMAT,
    ROUTE_LABELS,
    AlertAcknowledgeForm,
    AlertFilterForm,
    AlertResolveForm,
    AuditFilterForm,
    PatientEnrollForm,
    SessionForm,
    SessionMoveForm,
    api_error_messages,
)
from journal.models import Alert, AlertRule, AlertSeverity, AlertStatus, TherapySession
from journal.selectors.alerts import alerts_visible_to
from journal.selectors.sessions import sessions_of
from journal.serializers.alerts import NOTE_MAX
from journal.services import alerts as alert_services
from journal.services.sessions import session_create, session_delete, session_update

PAGE_SIZE = 50

# --- Alerts -------------------------------------------------------------------------------------

# Most severe first: the inbox is worked from the top.
_SEVERITY_RANK = Case(
    *[When(severity=severity, then=Value(rank)) for rank, severity in enumerate(AlertSeverity.values[::-1])],
    output_field=IntegerField(),
)


def _day(value) -> str:
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return f"{day:%a} {day.day} {day:%b}"


def _days(values) -> str:
    return ", ".join(_day(value) for value in values or [])


def _figures(values) -> str:
    return ", ".join(str(value) for value in values or [])


def evidence_summary(alert: Alert) -> str:
    """The newest evidence item in a sentence (never note text: evidence holds figures only)."""
    if not alert.evidence:
        return ""
    item = alert.evidence[-1]
    rule = alert.rule
    if rule == AlertRule.PHQ9_SELF_HARM:
        text = f"Item 9 answered {item.get('item9')} (of 3) on {_day(item.get('completed_at'))}"
    elif rule == AlertRule.USE_REPORTED:
        text = f"{str(item.get('substance') or 'use').capitalize()} on {_day(item.get('local_date'))}"
    elif rule == AlertRule.CRAVING_HIGH:
        text = f"Highest craving {_figures(item.get('day_max'))} (of 10) on {_days(item.get('days'))}"
    elif rule == AlertRule.PHQ9_WORSENING:
        text = f"PHQ-9 total {item.get('score')} (of 27)"
        if item.get("previous_score") is not None:
            text += f", up {item.get('rise')} from {item.get('previous_score')}"
    elif rule == AlertRule.CRAVING_RISING:
        text = f"7-day craving mean {item.get('mean_7d')}, up from {item.get('mean_prev_7d')} the week before"
    elif rule == AlertRule.MOOD_LOW:
        text = f"Daily mood {_figures(item.get('day_mean'))} (of 10) on {_days(item.get('days'))}"
    elif rule == AlertRule.DISENGAGED:
        last = item.get("last_entry_day")
        text = f"Nothing written since {_day(last)}" if last else "Nothing written since enrolling"
    else:
        text = ""
    if len(alert.evidence) > 1:
        text += f" · fired {len(alert.evidence)} times"
    return text


def _alert_context(alert: Alert) -> dict:
    return {
        "alert": alert,
        "rule_text": alert.get_rule_display(),
        "summary": evidence_summary(alert),
        "note_max": NOTE_MAX,
    }


def _sentences(errors: dict) -> str:
    return " ".join(message for messages_ in errors.values() for message in messages_)


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("dashboard:alerts")


@clinician_required
@require_http_methods(["GET", "HEAD"])
def alert_inbox(request):
    """The alerts of the reader's care-team patients, most severe and then oldest first."""
    form = AlertFilterForm(request.GET)
    filters = form.filters()
    alerts = alerts_visible_to(
        request.user, status=filters["status"], severity=filters["severity"], patient_id=filters["patient_id"]
    )
    if filters["exclude_resolved"]:
        alerts = alerts.exclude(status=AlertStatus.RESOLVED)
    page = Paginator(alerts.order_by(_SEVERITY_RANK, "opened_at", "id"), PAGE_SIZE).get_page(request.GET.get("page"))
    # As GET /api/v1/alerts/: one `list` row per patient on the page.
    access_log_record(request, patients=list(dict.fromkeys(a.patient_id for a in page)), action=AccessAction.LIST)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "nav": "alerts",
        "form": form,
        "page": page,
        "rows": [_alert_context(alert) for alert in page],
        "patient_filter": filters["patient_id"],
        "query": query.urlencode(),
        "next": request.get_full_path(),
    }
    return render(request, "dashboard/workflows/alerts.html", context)


def _alert_for_change(request, alert_id) -> Alert:
    # As the API: the care-team rule first (404), then the `update` row, then the body.
    alert = get_object_or_404(alerts_visible_to(request.user), pk=alert_id)
    access_log_record(request, patients=[alert.patient_id], action=AccessAction.UPDATE)
    return alert


def _alert_step(request, alert: Alert, form_class, step, *, done: str, refused: str):
    form = form_class(request.POST)
    error = None
    if form.is_valid():
        try:
            step(alert=alert, by=request.user, note=form.validated["note"])
        except (Conflict, ValidationError) as exc:
            error = _sentences(api_error_messages(exc.detail))
    else:
        error = _sentences(form.errors)
    if request.htmx:
        # The inbox swaps this row in place; the outcome is announced inside it.
        fresh = alerts_visible_to(request.user).get(pk=alert.pk)
        outcome = {"error": error, "notice": None if error else done}
        context = {**_alert_context(fresh), **outcome, "next": _safe_next(request)}
        return render(request, "dashboard/workflows/_alert_row.html", context)
    if error:
        messages.error(request, f"{refused} {error}")
    else:
        messages.success(request, done)
    return redirect(_safe_next(request))


@clinician_required
@require_POST
def alert_acknowledge(request, alert_id):
    alert = _alert_for_change(request, alert_id)
    return _alert_step(
        request,
        alert,
        AlertAcknowledgeForm,
        alert_services.alert_acknowledge,
        done="Alert acknowledged.",
        refused="The alert was not acknowledged:",
    )


@clinician_required
@require_POST
def alert_resolve(request, alert_id):
    alert = _alert_for_change(request, alert_id)
    return _alert_step(
        request,
        alert,
        AlertResolveForm,
        alert_services.alert_resolve,
        done="Alert resolved.",
        refused="The alert was not resolved:",
    )


# --- Sessions -----------------------------------------------------------------------------------


def _care_team_patient(request, patient_id, action: str) -> Patient:
    patient = get_object_or_404(patients_visible_to(request.user), pk=patient_id)
    access_log_record(request, patients=[patient], action=action)
    return patient


def _sessions_page(request, patient: Patient, form: SessionForm, *, status: int = 200):
    now = timezone.now()
    upcoming, past = [], []
    for session in sessions_of(patient):
        session.local_input = session.starts_at.astimezone(patient.zone).strftime(LOCAL_INPUT_FORMAT)
        session.route_label = ROUTE_LABELS.get(session.route, session.route)
        (upcoming if session.starts_at >= now else past).append(session)
    context = {
        "nav": "triage",
        "patient": patient,
        "form": form,
        "upcoming": upcoming,
        "past": past[::-1],
        "now": now,
    }
    return render(request, "dashboard/workflows/sessions.html", context, status=status)


@clinician_required
@require_http_methods(["GET", "HEAD", "POST"])
def sessions(request, patient_id):
    """A patient's sessions, and the form that schedules one (POST /api/v1/patients/{id}/sessions/)."""
    if request.method != "POST":
        patient = _care_team_patient(request, patient_id, AccessAction.VIEW)
        return _sessions_page(request, patient, SessionForm(patient=patient))
    patient = _care_team_patient(request, patient_id, AccessAction.CREATE)
    form = SessionForm(request.POST, patient=patient)
    if form.is_valid():
        try:
            session_create(patient=patient, created_by=request.user, data=form.validated)
        except ValidationError as exc:
            form.add_api_errors(exc.detail)
        else:
            messages.success(request, "Session scheduled.")
            return redirect("dashboard:sessions", patient_id=patient.pk)
    return _sessions_page(request, patient, form, status=400)


def _session_for_change(request, session_id, action: str) -> TherapySession:
    # The API reaches a session through its patient; this route names only the session, so its
    # patient is looked up first and then goes through the same care-team rule (404 either way).
    patient_id = TherapySession.objects.filter(pk=session_id).values_list("patient_id", flat=True).first()
    if patient_id is None:
        raise Http404
    patient = _care_team_patient(request, patient_id, action)
    session = get_object_or_404(sessions_of(patient), pk=session_id)
    session.patient = patient
    return session


@clinician_required
@require_POST
def session_move(request, session_id):
    session = _session_for_change(request, session_id, AccessAction.UPDATE)
    patient = session.patient
    form = SessionMoveForm(request.POST, patient=patient)
    if form.is_valid():
        try:
            session_update(session=session, data=form.validated)
        except NotFound:
            messages.error(request, "The session was not moved: it was cancelled in the meantime.")
        except ValidationError as exc:
            messages.error(request, "The session was not moved: " + _sentences(api_error_messages(exc.detail)))
        else:
            messages.success(request, "Session moved.")
    else:
        messages.error(request, "The session was not moved: " + _sentences(form.errors))
    return redirect("dashboard:sessions", patient_id=patient.pk)


@clinician_required
@require_POST
def session_cancel(request, session_id):
    session = _session_for_change(request, session_id, AccessAction.DELETE)
    try:
        session_delete(session=session)
    except NotFound:
        messages.error(request, "This session was already cancelled.")
    else:
        messages.success(request, "Session cancelled.")
    return redirect("dashboard:sessions", patient_id=session.patient_id)


# --- Enrolling a patient ------------------------------------------------------------------------

# Which enrollment forms this browser already submitted, and the patient each one created.
_SUBMITTED = "dashboard.enrollment_submissions"
_SUBMISSIONS_KEPT = 20


def _server(request) -> str:
    return settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")


def enrollment_link(code: str, server: str) -> str:
    """What the QR code holds, for the phone app: interlude://enroll?code=…&server=… (URL-encoded)."""
    return "interlude://enroll?" + urlencode({"code": code, "server": server})


def enrollment_qr_svg(link: str) -> str:
    """The QR code as inline SVG: no request leaves the page, and no data: URL for the CSP to allow."""
    qr = segno.make(link, error="m")
    # No <title>: the page's role="img" container names it, and two names read as two images.
    return qr.svg_inline(scale=5, border=4, dark="#000", light="#fff", svgclass="qr")


def _code_page(request, patient: Patient, code: str, expires_at: datetime):
    # The raw code lives only in this response: never in the session, a message, a log or a URL.
    server = _server(request)
    context = {
        "nav": "enroll",
        "patient": patient,
        "code": code,
        "expires_at": expires_at,
        "qr_svg": mark_safe(enrollment_qr_svg(enrollment_link(code, server))),  # noqa: S308 - segno's own markup
        "server": server,
    }
    return render(request, "dashboard/workflows/enrollment_code.html", context)


@clinician_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def patient_enroll(request):
    """A new patient (POST /api/v1/patients/): the clinician joins the care team, then the code."""
    if request.method != "POST":
        return render(request, "dashboard/workflows/enroll.html", {"nav": "enroll", "form": PatientEnrollForm()})
    form = PatientEnrollForm(request.POST)
    if not form.is_valid():
        return render(request, "dashboard/workflows/enroll.html", {"nav": "enroll", "form": form}, status=400)
    submission = str(form.cleaned_data["submission"])
    submitted = request.session.get(_SUBMITTED, {})
    if submission in submitted:
        messages.info(request, "This patient was already added from that form. Issue a new code here if needed.")
        return redirect("dashboard:enrollment-code", patient_id=submitted[submission])
    data = form.validated
    patient, code, expires_at = patient_create(
        clinician=request.user,
        display_name=data["display_name"],
        timezone_name=data["timezone"],
        substances=data["substances"],
    )
    access_log_record(request, patients=[patient], action=AccessAction.CREATE)
    submitted[submission] = str(patient.pk)
    request.session[_SUBMITTED] = dict(list(submitted.items())[-_SUBMISSIONS_KEPT:])
    return _code_page(request, patient, code, expires_at)


@clinician_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def enrollment_code(request, patient_id):
    """GET: a button; POST: a fresh code (POST /api/v1/patients/{id}/enrollment/), the old one dead."""
    if request.method != "POST":
        patient = _care_team_patient(request, patient_id, AccessAction.VIEW)
        return render(request, "dashboard/workflows/enrollment.html", {"nav": "enroll", "patient": patient})
    patient = _care_team_patient(request, patient_id, AccessAction.CREATE)
    code, expires_at = enrollment_code_issue(patient=patient, issued_by=request.user)
    return _code_page(request, patient, code, expires_at)


# --- The access log -----------------------------------------------------------------------------


def _position(raw: str | None) -> tuple[datetime, int] | None:
    """A page boundary `<at ISO>~<id>`; anything else counts as none (the newest page)."""
    if not raw:
        return None
    at, _, row_id = raw.rpartition("~")
    try:
        moment = datetime.fromisoformat(at)
        return (moment, int(row_id)) if moment.tzinfo else None
    except ValueError:
        return None


def _access_log_page(queryset, params) -> tuple[list, str | None, str | None]:
    """One page, newest first, by keyset on (at, id): the log only grows, and counting it for page
    numbers would cost more than the page. Returns (rows, older link, newer link)."""
    older, newer = _position(params.get("older")), _position(params.get("newer"))
    if newer:
        at, row_id = newer
        rows = list(queryset.filter(Q(at__gt=at) | Q(at=at, id__gt=row_id)).order_by("at", "id")[: PAGE_SIZE + 1])
        has_newer, has_older = len(rows) > PAGE_SIZE, True
        rows = rows[:PAGE_SIZE][::-1]
    else:
        if older:
            at, row_id = older
            queryset = queryset.filter(Q(at__lt=at) | Q(at=at, id__lt=row_id))
        rows = list(queryset.order_by("-at", "-id")[: PAGE_SIZE + 1])
        has_older, has_newer = len(rows) > PAGE_SIZE, older is not None
        rows = rows[:PAGE_SIZE]

    def link(direction: str, row) -> str:
        query = params.copy()
        query.pop("older", None)
        query.pop("newer", None)
        query[direction] = f"{row.at.isoformat()}~{row.pk}"
        return "?" + query.urlencode()

    return (
        rows,
        link("older", rows[-1]) if rows and has_older else None,
        link("newer", rows[0]) if rows and has_newer else None,
    )


@clinic_admin_required
@require_http_methods(["GET", "HEAD"])
def access_log(request):
    """The clinic's access log, read-only, with the filters of GET /api/v1/audit/."""
    admin = request.user
    form = AuditFilterForm(
        request.GET,
        patients=patients_managed_by(admin).only("id", "display_name").order_by("display_name", "id"),
        actors=clinicians_of_clinic(admin.clinic_id).only("id", "display_name", "email").order_by("display_name", "id"),
    )
    rows, older, newer = [], None, None
    if form.is_valid():
        queryset = access_log_for_clinic(admin=admin, **form.filters())
        rows, older, newer = _access_log_page(queryset, request.GET)
    context = {"nav": "audit", "form": form, "rows": rows, "older": older, "newer": newer}
    return render(request, "dashboard/workflows/audit.html", context, status=200 if form.is_valid() else 400)
