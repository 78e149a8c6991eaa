"""The dashboard pages that act (SPEC §9, §6, §4, §11, §12): the alert inbox with acknowledge and
resolve, scheduling, moving and cancelling sessions, enrolling a patient with a code and QR code,
and the admins' access log. The same rules as the API: care team only (404 for outsiders, 403 for
patients), one access-log row per patient touched, and query counts that do not grow."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import AccessLog, CareTeamMembership, EnrollmentCode, Patient
from dashboard.views.workflows import enrollment_link, enrollment_qr_svg
from journal.models import Alert, TherapySession
from tests.factories import PatientFactory, care_team_add

NOW = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)  # 12:00 in New York, the factories' zone

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(autouse=True)
def _no_second_factor(settings):
    settings.DASHBOARD_REQUIRE_2FA = False  # force_login stands in for the whole sign-in


def signed_in(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def make_alert(patient, rule="use_reported", severity="high", *, opened=NOW, status="open", evidence=None):
    return Alert.objects.create(
        patient=patient,
        rule=rule,
        severity=severity,
        status=status,
        opened_at=opened,
        last_fired_at=opened,
        evidence=evidence or [{"at": opened.isoformat(), "substance": "alcohol", "local_date": "2026-06-15"}],
        **({"resolved_at": opened, "resolved_by": patient.care_team.first()} if status == "resolved" else {}),
    )


def make_session(patient, *, starts_at=NOW + timedelta(days=2), kind="integration", **fields):
    return TherapySession.objects.create(
        patient=patient,
        kind=kind,
        starts_at=starts_at,
        local_date=patient.journal_day(starts_at)[0],
        duration_minutes=60,
        **fields,
    )


def code_on(page: str) -> str:
    match = re.search(r'id="enrollment-code">([A-Z0-9-]+)<', page)
    assert match, page
    return match.group(1)


def enroll_with(code: str, email="nova@example.org"):
    return APIClient().post(
        "/api/v1/auth/enroll/",
        {"code": code, "email": email, "password": "a-brand-new-passphrase", "consent_version": "1"},
        format="json",
    )


def page_of(response) -> str:
    return response.content.decode()


# --- Who may open what --------------------------------------------------------------------------


def test_every_page_renders_for_the_care_team_clinician(cast):
    make_alert(cast.patient)
    make_session(cast.patient, notes="Went well")
    client = signed_in(cast.clinician)
    pid = cast.patient.pk
    for url in ("/dashboard/alerts/", f"/dashboard/patients/{pid}/sessions/", "/dashboard/patients/new/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "<h1>" in page_of(response)
    enrollment = client.get(f"/dashboard/patients/{pid}/enrollment/")
    assert enrollment.status_code == 200
    assert 'id="enrollment-code"' not in page_of(enrollment)
    assert signed_in(cast.admin).get("/dashboard/audit/").status_code == 200


def _patient_routes(cast) -> list[tuple[str, str, dict]]:
    alert = make_alert(cast.patient)
    session = make_session(cast.patient)
    pid = cast.patient.pk
    return [
        ("post", f"/dashboard/alerts/{alert.pk}/acknowledge/", {"note": "seen"}),
        ("post", f"/dashboard/alerts/{alert.pk}/resolve/", {"note": "done"}),
        ("get", f"/dashboard/patients/{pid}/sessions/", {}),
        ("post", f"/dashboard/patients/{pid}/sessions/", {"kind": "medical"}),
        ("post", f"/dashboard/sessions/{session.pk}/move/", {"starts_at": "2026-06-20T10:00"}),
        ("post", f"/dashboard/sessions/{session.pk}/cancel/", {}),
        ("get", f"/dashboard/patients/{pid}/enrollment/", {}),
        ("post", f"/dashboard/patients/{pid}/enrollment/", {}),
    ]


def test_an_outsider_gets_404_on_every_patient_alert_and_session_route_and_changes_nothing(cast):
    client = signed_in(cast.outsider)
    codes_before = EnrollmentCode.objects.count()
    for method, url, data in _patient_routes(cast):
        assert getattr(client, method)(url, data).status_code == 404, url
    assert Alert.objects.get(patient=cast.patient).status == "open"
    assert TherapySession.objects.get(patient=cast.patient).deleted_at is None
    assert EnrollmentCode.objects.count() == codes_before
    assert not AccessLog.objects.filter(actor=cast.outsider).exists()
    for missing in (f"/dashboard/alerts/{uuid.uuid4()}/acknowledge/", f"/dashboard/sessions/{uuid.uuid4()}/cancel/"):
        assert signed_in(cast.clinician).post(missing).status_code == 404


def test_a_patient_gets_403_everywhere_and_an_anonymous_visitor_is_sent_to_sign_in(cast):
    routes = [*_patient_routes(cast), ("get", "/dashboard/alerts/", {}), ("get", "/dashboard/patients/new/", {})]
    routes.append(("get", "/dashboard/audit/", {}))
    patient_client = signed_in(cast.patient.user)
    for method, url, data in routes:
        assert getattr(patient_client, method)(url, data).status_code == 403, url
    response = Client().get("/dashboard/alerts/")
    assert response.status_code == 302 and response["Location"].startswith("/dashboard/login/")


def test_the_access_log_is_for_clinic_admins_only(cast):
    assert signed_in(cast.clinician).get("/dashboard/audit/").status_code == 403
    assert signed_in(cast.admin).get("/dashboard/audit/").status_code == 200


def test_action_routes_refuse_get(cast):
    alert = make_alert(cast.patient)
    session = make_session(cast.patient)
    client = signed_in(cast.clinician)
    for url in (f"/dashboard/alerts/{alert.pk}/acknowledge/", f"/dashboard/sessions/{session.pk}/cancel/"):
        assert client.get(url).status_code == 405


# --- The alert inbox ----------------------------------------------------------------------------


def test_the_inbox_shows_care_team_alerts_most_severe_then_oldest_first(cast):
    care_team_add(cast.other_patient, cast.clinician)
    low = make_alert(cast.patient, "disengaged", "low", opened=NOW - timedelta(days=9), evidence=[{"at": "x"}])
    newer_high = make_alert(cast.patient, "use_reported", "high", opened=NOW - timedelta(hours=1))
    older_high = make_alert(cast.other_patient, "use_reported", "high", opened=NOW - timedelta(days=2))
    urgent = make_alert(
        cast.patient,
        "phq9_self_harm",
        "urgent",
        opened=NOW - timedelta(minutes=5),
        evidence=[{"at": NOW.isoformat(), "item9": 2, "completed_at": "2026-06-15T15:55:00Z"}],
    )
    resolved = make_alert(cast.patient, "mood_low", "medium", status="resolved", evidence=[{"at": "x", "days": []}])
    page = page_of(signed_in(cast.clinician).get("/dashboard/alerts/"))
    positions = [page.index(f'id="alert-{a.pk}"') for a in (urgent, older_high, newer_high, low)]
    assert positions == sorted(positions)
    assert f'id="alert-{resolved.pk}"' not in page  # the default is open and acknowledged
    assert 'class="badge urgent"' in page
    assert "PHQ-9 item 9 (thoughts of self-harm) answered above zero" in page
    assert "Item 9 answered 2 (of 3)" in page
    assert "Alcohol on Mon 15 Jun" in page
    assert f'href="/dashboard/patients/{cast.patient.pk}/"' in page

    only_resolved = page_of(signed_in(cast.clinician).get("/dashboard/alerts/", {"status": "resolved"}))
    assert f'id="alert-{resolved.pk}"' in only_resolved and f'id="alert-{urgent.pk}"' not in only_resolved
    only_high = page_of(signed_in(cast.clinician).get("/dashboard/alerts/", {"severity": "high"}))
    assert f'id="alert-{older_high.pk}"' in only_high and f'id="alert-{urgent.pk}"' not in only_high


def test_the_inbox_shows_nothing_of_another_teams_patients(cast):
    theirs = make_alert(cast.other_patient, "phq9_self_harm", "urgent", evidence=[{"at": "x", "item9": 3}])
    mine = make_alert(cast.patient)
    page = page_of(signed_in(cast.clinician).get("/dashboard/alerts/", {"status": "any"}))
    assert f'id="alert-{mine.pk}"' in page
    assert f'id="alert-{theirs.pk}"' not in page
    assert cast.other_patient.display_name not in page
    assert page_of(signed_in(cast.admin).get("/dashboard/alerts/")).count('class="alert-row') == 0


def test_acknowledge_keeps_who_when_and_the_note_and_returns_to_a_same_site_next(cast):
    alert = make_alert(cast.patient)
    client = signed_in(cast.clinician)
    back = "/dashboard/alerts/?severity=high"
    response = client.post(f"/dashboard/alerts/{alert.pk}/acknowledge/", {"note": "Called her", "next": back})
    assert response.status_code == 302 and response["Location"] == back
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    assert alert.acknowledged_by == cast.clinician and alert.acknowledged_at == NOW
    assert alert.acknowledge_note == "Called her"
    page = page_of(client.get(back))
    assert "Alert acknowledged." in page
    assert f"Acknowledged by {cast.clinician.display_name}" in page


def test_an_off_site_next_goes_to_the_inbox_instead(cast):
    alert = make_alert(cast.patient)
    response = signed_in(cast.clinician).post(
        f"/dashboard/alerts/{alert.pk}/acknowledge/", {"next": "https://evil.example/phish"}
    )
    assert response["Location"] == "/dashboard/alerts/"


def test_resolve_without_a_note_is_refused_with_a_message_and_with_one_it_resolves(cast):
    alert = make_alert(cast.patient)
    client = signed_in(cast.clinician)
    refused = client.post(f"/dashboard/alerts/{alert.pk}/resolve/", {"note": "   "}, follow=True)
    assert refused.status_code == 200
    assert "The alert was not resolved" in page_of(refused) and "note is required" in page_of(refused)
    alert.refresh_from_db()
    assert alert.status == "open"
    client.post(f"/dashboard/alerts/{alert.pk}/resolve/", {"note": "Back on track"})
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by, alert.resolved_at) == ("resolved", cast.clinician, NOW)
    assert alert.resolve_note == "Back on track"
    assert alert.acknowledged_at is None  # resolving an open alert records no acknowledgement


def test_an_invalid_transition_is_a_message_not_an_error_page(cast):
    alert = make_alert(cast.patient)
    client = signed_in(cast.clinician)
    client.post(f"/dashboard/alerts/{alert.pk}/resolve/", {"note": "done"})
    again = client.post(f"/dashboard/alerts/{alert.pk}/acknowledge/", {}, follow=True)
    assert again.status_code == 200
    assert "already acknowledged or resolved" in page_of(again)
    twice = client.post(f"/dashboard/alerts/{alert.pk}/resolve/", {"note": "done"}, follow=True)
    assert "already resolved" in page_of(twice)
    alert.refresh_from_db()
    assert alert.resolve_note == "done" and alert.acknowledged_at is None


def test_an_htmx_request_gets_the_updated_row(cast):
    alert = make_alert(cast.patient)
    client = signed_in(cast.clinician)
    response = client.post(f"/dashboard/alerts/{alert.pk}/acknowledge/", {"note": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    row = page_of(response)
    assert row.strip().startswith(f'<tr id="alert-{alert.pk}"')
    assert "Acknowledged by" in row and 'role="status"' in row
    assert "/acknowledge/" not in row  # only resolving is left
    refused = page_of(client.post(f"/dashboard/alerts/{alert.pk}/resolve/", {}, HTTP_HX_REQUEST="true"))
    assert 'role="alert"' in refused and "note is required" in refused


# --- Sessions -----------------------------------------------------------------------------------


def test_scheduling_a_ketamine_session_reads_the_time_in_the_patients_zone(cast):
    client = signed_in(cast.clinician)
    url = f"/dashboard/patients/{cast.patient.pk}/sessions/"
    page = page_of(client.get(url))
    assert "America/New_York" in page and 'type="datetime-local"' in page
    response = client.post(
        url,
        {
            "kind": "ketamine",
            "starts_at": "2026-06-20T10:00",
            "duration_minutes": "90",
            "route": "im",
            "dose_mg": "35.5",
        },
    )
    assert response.status_code == 302 and response["Location"] == url
    session = TherapySession.objects.get(patient=cast.patient)
    assert session.starts_at == datetime(2026, 6, 20, 14, 0, tzinfo=UTC)  # 10:00 EDT
    assert (session.kind, session.duration_minutes, session.route, str(session.dose_mg)) == (
        "ketamine",
        90,
        "im",
        "35.5",
    )
    assert session.created_by == cast.clinician
    assert "Sat 20 Jun 2026, 10:00 EDT" in page_of(client.get(url))


@pytest.mark.parametrize(
    ("post", "field", "message"),
    [
        ({"kind": "medical", "duration_minutes": "30"}, "starts_at", "This field is required"),
        (
            {"kind": "medical", "starts_at": "2026-06-20T10:00", "duration_minutes": "0"},
            "duration_minutes",
            "greater than or equal to 1",
        ),
        (  # the service's rule: route and dose belong to ketamine sessions only
            {"kind": "medical", "starts_at": "2026-06-20T10:00", "duration_minutes": "30", "route": "iv"},
            "route",
            "Only a ketamine session has a route and a dose.",
        ),
        (  # 02:30 does not exist in New York on the spring-forward day
            {"kind": "medical", "starts_at": "2026-03-08T02:30", "duration_minutes": "30"},
            "starts_at",
            "may not exist",
        ),
        (
            {"kind": "ketamine", "starts_at": "2026-06-20T10:00", "duration_minutes": "30", "dose_mg": "12.25"},
            "dose_mg",
            "decimal place",
        ),
    ],
)
def test_a_refused_session_re_renders_the_form_with_the_error_next_to_the_field(cast, post, field, message):
    response = signed_in(cast.clinician).post(f"/dashboard/patients/{cast.patient.pk}/sessions/", post)
    assert response.status_code == 400
    page = page_of(response)
    error = re.search(rf'<p class="field-error" id="id_{field}_error" role="alert">([^<]*)</p>', page)
    assert error and message in error.group(1), page
    assert re.search(rf'aria-describedby="[^"]*id_{field}_error"', page)
    assert 'class="form-errors" role="alert"' in page
    assert not TherapySession.objects.exists()


def test_moving_and_cancelling_a_session(cast):
    session = make_session(cast.patient, notes="Bring the scales")
    client = signed_in(cast.clinician)
    sessions_url = f"/dashboard/patients/{cast.patient.pk}/sessions/"
    moved = client.post(f"/dashboard/sessions/{session.pk}/move/", {"starts_at": "2026-06-22T09:15"})
    assert moved.status_code == 302 and moved["Location"] == sessions_url
    session.refresh_from_db()
    assert session.starts_at == datetime(2026, 6, 22, 13, 15, tzinfo=UTC)
    assert str(session.local_date) == "2026-06-22"
    bad = client.post(f"/dashboard/sessions/{session.pk}/move/", {"starts_at": "soon"}, follow=True)
    assert "The session was not moved" in page_of(bad)
    cancelled = client.post(f"/dashboard/sessions/{session.pk}/cancel/", follow=True)
    assert "Session cancelled." in page_of(cancelled)
    session.refresh_from_db()
    assert session.deleted_at == NOW  # a soft delete
    assert "Bring the scales" not in page_of(client.get(sessions_url))
    assert client.post(f"/dashboard/sessions/{session.pk}/cancel/").status_code == 404


def test_sessions_are_split_into_upcoming_and_past(cast):
    make_session(cast.patient, starts_at=NOW + timedelta(days=1), notes="ahead")
    make_session(cast.patient, starts_at=NOW - timedelta(days=1), notes="behind")
    page = page_of(signed_in(cast.clinician).get(f"/dashboard/patients/{cast.patient.pk}/sessions/"))
    assert page.index("Upcoming") < page.index("ahead") < page.index("Past") < page.index("behind")


# --- Enrolling a patient ------------------------------------------------------------------------


def _enroll_form(client) -> dict:
    page = page_of(client.get("/dashboard/patients/new/"))
    submission = re.search(r'name="submission" value="([0-9a-f-]+)"', page).group(1)
    return {
        "display_name": "Nova",
        "timezone": "Europe/Berlin",
        "substances": ["alcohol", "cocaine"],
        "submission": submission,
    }


def test_enrolling_creates_the_patient_on_my_care_team_and_the_code_works_in_the_app(cast):
    client = signed_in(cast.clinician)
    response = client.post("/dashboard/patients/new/", _enroll_form(client))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    patient = Patient.objects.get(display_name="Nova")
    assert (patient.timezone, patient.substances) == ("Europe/Berlin", ["alcohol", "cocaine"])
    assert CareTeamMembership.objects.filter(patient=patient, clinician=cast.clinician).exists()
    page = page_of(response)
    code = code_on(page)
    assert enrollment_qr_svg(enrollment_link(code, "http://testserver")) in page  # PUBLIC_BASE_URL in tests
    assert 'role="img"' in page and "expires on" in page
    assert AccessLog.objects.filter(actor=cast.clinician, patient=patient, action="create").count() == 1
    # Shown once and stored nowhere readable: not in the session, the log, or the code table.
    assert code not in str(dict(client.session.items()))
    assert not EnrollmentCode.objects.filter(code_hash__icontains=code.replace("-", "")).exists()
    assert not AccessLog.objects.filter(path__icontains=code).exists()
    assert enroll_with(code).status_code == 201


def test_the_qr_code_holds_the_app_link_with_code_and_server(settings):
    link = enrollment_link("ABCD-EFGH-JKMN", "https://clinic.example")
    parsed = urlparse(link)
    assert (parsed.scheme, parsed.netloc) == ("interlude", "enroll")
    assert parse_qs(parsed.query) == {"code": ["ABCD-EFGH-JKMN"], "server": ["https://clinic.example"]}


def test_submitting_the_same_enrollment_form_twice_creates_one_patient(cast):
    client = signed_in(cast.clinician)
    form = _enroll_form(client)
    client.post("/dashboard/patients/new/", form)
    again = client.post("/dashboard/patients/new/", form)
    patient = Patient.objects.get(display_name="Nova")
    assert again.status_code == 302 and again["Location"] == f"/dashboard/patients/{patient.pk}/enrollment/"


def test_an_unknown_time_zone_is_refused_next_to_the_field(cast):
    client = signed_in(cast.clinician)
    response = client.post("/dashboard/patients/new/", {**_enroll_form(client), "timezone": "Mars/Olympus"})
    assert response.status_code == 400
    assert re.search(r'id="id_timezone_error" role="alert"', page_of(response))
    assert not Patient.objects.filter(display_name="Nova").exists()


def test_a_fresh_code_invalidates_the_old_one_and_get_issues_none(cast):
    client = signed_in(cast.clinician)
    url = f"/dashboard/patients/{cast.patient.pk}/enrollment/"
    first = code_on(page_of(client.post(url)))
    before = EnrollmentCode.objects.count()
    client.get(url)
    assert EnrollmentCode.objects.count() == before
    second = code_on(page_of(client.post(url)))
    assert first != second
    assert enroll_with(first, email="old@example.org").json()["error"]["code"] == "invalid_code"
    assert enroll_with(second, email="new@example.org").status_code == 201


# --- The access log -----------------------------------------------------------------------------


def test_every_read_and_change_writes_the_api_s_access_log_rows(cast):
    care_team_add(cast.other_patient, cast.clinician)
    alert = make_alert(cast.patient)
    make_alert(cast.other_patient)
    session = make_session(cast.patient)
    client = signed_in(cast.clinician)
    client.get("/dashboard/alerts/")
    client.post(f"/dashboard/alerts/{alert.pk}/acknowledge/")
    client.get(f"/dashboard/patients/{cast.patient.pk}/sessions/")
    client.post(f"/dashboard/patients/{cast.patient.pk}/sessions/", {"kind": "medical"})
    client.post(f"/dashboard/sessions/{session.pk}/move/", {"starts_at": "2026-06-22T09:15"})
    client.post(f"/dashboard/sessions/{session.pk}/cancel/")
    client.get(f"/dashboard/patients/{cast.patient.pk}/enrollment/")
    client.post(f"/dashboard/patients/{cast.patient.pk}/enrollment/")
    rows = list(
        AccessLog.objects.filter(actor=cast.clinician).order_by("id").values_list("patient_id", "action", "path")
    )
    mine, olive = cast.patient.pk, cast.other_patient.pk
    sessions_path = f"/dashboard/patients/{mine}/sessions/"
    assert sorted(rows[:2]) == sorted([(mine, "list", "/dashboard/alerts/"), (olive, "list", "/dashboard/alerts/")])
    assert rows[2:] == [
        (mine, "update", f"/dashboard/alerts/{alert.pk}/acknowledge/"),
        (mine, "view", sessions_path),
        (mine, "create", sessions_path),
        (mine, "update", f"/dashboard/sessions/{session.pk}/move/"),
        (mine, "delete", f"/dashboard/sessions/{session.pk}/cancel/"),
        (mine, "view", f"/dashboard/patients/{mine}/enrollment/"),
        (mine, "create", f"/dashboard/patients/{mine}/enrollment/"),
    ]


def _log_rows(cast, n: int, *, at=NOW):
    AccessLog.objects.bulk_create(
        [
            AccessLog(at=at, actor=cast.clinician, patient=cast.patient, action="view", path=f"/row/{i}/")
            for i in range(n)
        ]
    )


def test_the_audit_page_filters_by_patient_actor_and_days(cast):
    _log_rows(cast, 2, at=NOW - timedelta(days=3))
    AccessLog.objects.create(at=NOW, actor=cast.outsider, patient=cast.other_patient, action="list", path="/olive/")
    foreign = PatientFactory(display_name="Elsewhere")  # another clinic: never shown
    AccessLog.objects.create(at=NOW, actor=cast.foreign_clinician, patient=foreign, action="view", path="/foreign/")
    client = signed_in(cast.admin)
    everything = page_of(client.get("/dashboard/audit/"))
    assert "/olive/" in everything and "/row/1/" in everything and "/foreign/" not in everything
    assert everything.index("/olive/") < everything.index("/row/1/")  # newest first
    by_patient = page_of(client.get("/dashboard/audit/", {"patient": cast.other_patient.pk}))
    assert "/olive/" in by_patient and "/row/1/" not in by_patient
    by_actor = page_of(client.get("/dashboard/audit/", {"actor": cast.clinician.pk}))
    assert "/olive/" not in by_actor and "/row/1/" in by_actor
    by_days = page_of(client.get("/dashboard/audit/", {"from": "2026-06-14", "to": "2026-06-15"}))
    assert "/olive/" in by_days and "/row/1/" not in by_days
    bad = client.get("/dashboard/audit/", {"from": "yesterday"})
    assert bad.status_code == 400 and 'role="alert"' in page_of(bad)


def test_the_audit_page_pages_by_50_newest_first(cast):
    _log_rows(cast, 120)
    client = signed_in(cast.admin)
    first = page_of(client.get("/dashboard/audit/"))
    assert first.count("/row/") == 50
    older = re.search(r'href="(\?older=[^"]+)">Older rows', first).group(1).replace("&amp;", "&")
    second = page_of(client.get("/dashboard/audit/" + older))
    assert second.count("/row/") == 50 and "Newer rows" in second
    seen_first = set(re.findall(r"/row/\d+/", first))
    assert not seen_first & set(re.findall(r"/row/\d+/", second))
    newer = re.search(r'href="(\?newer=[^"]+)">Newer rows', second).group(1).replace("&amp;", "&")
    assert set(re.findall(r"/row/\d+/", page_of(client.get("/dashboard/audit/" + newer)))) == seen_first


# --- Query counts -------------------------------------------------------------------------------


def test_the_inbox_query_count_does_not_grow_with_alerts(cast, django_assert_num_queries):
    client = signed_in(cast.clinician)
    make_alert(cast.patient)
    # Session, user; alert count, the page (patients and actors joined); the access log insert.
    with django_assert_num_queries(5):
        assert client.get("/dashboard/alerts/").status_code == 200
    for n in range(30):
        patient = PatientFactory(clinic=cast.clinician.clinic, display_name=f"P{n}")
        care_team_add(patient, cast.clinician)
        alert = make_alert(
            patient, "craving_high", "high", evidence=[{"at": "x", "days": ["2026-06-14"], "day_max": [9]}]
        )
        if n % 2:
            Alert.objects.filter(pk=alert.pk).update(
                status="acknowledged", acknowledged_at=NOW, acknowledged_by=cast.clinician
            )
    with django_assert_num_queries(5):
        assert page_of(client.get("/dashboard/alerts/")).count('class="alert-row') == 31


def test_the_audit_page_query_count_does_not_grow_with_rows(cast, django_assert_num_queries):
    client = signed_in(cast.admin)
    _log_rows(cast, 1)
    # Session, user; patients and clinicians for the filters; the page (actors and patients joined).
    with django_assert_num_queries(5):
        assert client.get("/dashboard/audit/").status_code == 200
    _log_rows(cast, 200)
    with django_assert_num_queries(5):
        assert page_of(client.get("/dashboard/audit/")).count("/row/") == 50


def test_the_sessions_page_query_count_does_not_grow_with_sessions(cast, django_assert_num_queries):
    client = signed_in(cast.clinician)
    url = f"/dashboard/patients/{cast.patient.pk}/sessions/"
    # Session, user; the patient (care-team rule); the access log insert; the sessions.
    with django_assert_num_queries(5):
        assert client.get(url).status_code == 200
    for n in range(20):
        make_session(cast.patient, starts_at=NOW + timedelta(days=n - 10), notes=f"n{n}")
    with django_assert_num_queries(5):
        assert client.get(url).status_code == 200


def test_a_search_holding_a_nul_byte_is_answered_not_a_500(cast):
    response = signed_in(cast.clinician).get("/dashboard/", {"q": "Pat\x00"})
    assert response.status_code == 200
    assert cast.patient.display_name in response.content.decode()
