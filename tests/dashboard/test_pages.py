"""The dashboard's reading pages (SPEC §12): the triage page and a patient's page. What they show
comes from the same selectors as the API, so these tests hold the wiring, the care-team rule, the
access log and the query counts; the browser tests check that the charts draw those figures."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AccessLog
from journal.models import Alert, SessionKind, TherapySession
from journal.services.entries import entry_create, entry_update
from tests.factories import PatientFactory, care_team_add

NOW = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)  # 12:00 in New York, the factories' zone
TODAY = date(2026, 6, 15)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def browser_as(cast):
    def signed_in(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return signed_in


def _entry(patient, days_ago: int, hours_ago: int = 1, **content):
    content.setdefault("kind", "craving")
    entry_id = uuid.uuid4()
    occurred = NOW - timedelta(days=days_ago, hours=hours_ago)
    entry_create(patient=patient, data={"id": entry_id, "occurred_at": occurred, **content})
    return entry_id


def _history(patient, days: int):
    for back in range(days):
        _entry(patient, back, kind="check_in", craving=back % 10, mood=(back * 3) % 11, triggers=["stress"])
        if back % 9 == 0:
            _entry(patient, back, hours_ago=3, kind="use", substance="alcohol")


def test_anonymous_visitors_go_to_the_sign_in_page(cast):
    for path in ("/dashboard/", f"/dashboard/patients/{cast.patient.pk}/"):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/dashboard/login/?next=")


def test_a_patient_cannot_open_the_dashboard(cast, browser_as):
    assert browser_as(cast.patient.user).get("/dashboard/").status_code == 403


def test_the_triage_page_lists_the_care_team_by_attention_with_badges_and_sparklines(cast, browser_as):
    calm = PatientFactory(clinic=cast.clinician.clinic, display_name="Calm")
    care_team_add(calm, cast.clinician)
    _entry(calm, 0, craving=2)
    _entry(cast.patient, 1, craving=9)
    Alert.objects.create(
        patient=cast.patient, rule="phq9_self_harm", severity="urgent", status="open", opened_at=NOW, last_fired_at=NOW
    )
    response = browser_as(cast.clinician).get("/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index(">Pat<") < html.index(">Calm<")  # the urgent alert first
    assert "Olive" not in html  # another care team's patient
    assert 'class="badge urgent"' in html
    assert "Daily mean craving, last 14 days:" in html and "<polyline" not in html.split(">Calm<")[1]
    assert AccessLog.objects.filter(actor=cast.clinician, action="list").count() == 2


def test_the_triage_page_searches_and_orders(cast, browser_as):
    other = PatientFactory(clinic=cast.clinician.clinic, display_name="Zed")
    care_team_add(other, cast.clinician)
    client = browser_as(cast.clinician)
    html = client.get("/dashboard/", {"q": "ze"}).content.decode()
    assert ">Zed<" in html and ">Pat<" not in html
    html = client.get("/dashboard/", {"ordering": "-name"}).content.decode()
    assert html.index(">Zed<") < html.index(">Pat<")
    assert client.get("/dashboard/", {"ordering": "drop table"}).status_code == 200  # unknown: the default
    partial = client.get("/dashboard/", {"q": "ze"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and ">Zed<" in partial


def test_the_triage_page_takes_the_same_queries_for_one_patient_or_thirty(cast, browser_as, django_assert_num_queries):
    client = browser_as(cast.clinician)
    # Session, user, patients, rollups, alerts, prompts, the access log's bulk insert.
    with django_assert_num_queries(7):
        client.get("/dashboard/")
    for n in range(30):
        patient = PatientFactory(clinic=cast.clinician.clinic, display_name=f"P{n}")
        care_team_add(patient, cast.clinician)
        _entry(patient, n % 5, craving=n % 10)
    with django_assert_num_queries(7):
        assert client.get("/dashboard/").content.decode().count("data-patient-id=") == 31


def test_an_outsider_gets_404_on_the_patient_page_and_leaves_no_trace(cast, browser_as):
    assert browser_as(cast.outsider).get(f"/dashboard/patients/{cast.patient.pk}/").status_code == 404
    assert browser_as(cast.admin).get(f"/dashboard/patients/{cast.patient.pk}/").status_code == 404
    assert not AccessLog.objects.filter(patient=cast.patient).exists()


def test_the_patient_page_shows_the_api_figures_and_writes_its_access_log_row(cast, browser_as, clients):
    _history(cast.patient, 40)
    edited = _entry(cast.patient, 0, craving=3, note="a hard evening")
    entry_update(patient=cast.patient, entry_id=edited, changes={"craving": 6, "note": "a harder evening"}, if_match=1)
    TherapySession.objects.create(
        patient=cast.patient, kind=SessionKind.KETAMINE, starts_at=NOW - timedelta(days=10),
        local_date=TODAY - timedelta(days=10), duration_minutes=90,
    )  # fmt: skip
    phq9 = {"id": str(uuid.uuid4()), "instrument": "phq9", "answers": [1] * 9, "completed_at": "2026-06-14T10:00:00Z"}
    assert clients.patient.post("/api/v1/assessments/", phq9, format="json").status_code == 201
    response = browser_as(cast.clinician).get(f"/dashboard/patients/{cast.patient.pk}/", {"days": 30})
    assert response.status_code == 200
    html = response.content.decode()
    charts = json.loads(html.split('id="chart-data" type="application/json">')[1].split("</script>")[0])
    api = clients.clinician.get(
        f"/api/v1/patients/{cast.patient.pk}/trends/", {"from": str(TODAY - timedelta(days=29)), "to": str(TODAY)}
    ).json()
    for key in ("days", "rolling_7d", "uses", "hours", "triggers", "assessments"):
        assert charts[key] == api[key], key
    sessions = clients.clinician.get(f"/api/v1/patients/{cast.patient.pk}/trends/sessions/", {"kind": "ketamine"})
    assert charts["session_trends"]["sessions"] == sessions.json()["sessions"]
    assert "a harder evening" in html and "craving 3 → 6" in html and "a hard evening" in html
    # The PHQ-9's item 9 above zero fired an alert, named in words as in the alert inbox.
    assert "PHQ-9 item 9 (thoughts of self-harm) answered above zero" in html
    assert 'id="chart-daily"' in html and 'id="chart-sessions"' in html and 'id="chart-assessments"' in html
    assert AccessLog.objects.filter(actor=cast.clinician, patient=cast.patient, action="view").exists()


def test_the_patient_page_takes_the_same_queries_for_a_week_or_a_year(cast, browser_as, django_assert_max_num_queries):
    client = browser_as(cast.clinician)
    path = f"/dashboard/patients/{cast.patient.pk}/"
    _history(cast.patient, 7)
    with CaptureQueriesContext(connection) as short:
        assert client.get(path, {"days": 365}).status_code == 200
    _history(cast.patient, 365)
    with django_assert_max_num_queries(len(short.captured_queries)):
        assert client.get(path, {"days": 365}).status_code == 200
