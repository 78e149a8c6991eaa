"""Alerts (SPEC §9): raising with one unresolved alert per patient and rule, the care team's inbox,
acknowledge and resolve with who and when, who may see what, the hourly disengagement check, and
the `support` block that high and urgent firings put in the patient's response."""

import importlib
import threading
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from accounts.models import AccessLog, Patient, User
from backend import hooks
from journal.models import Alert
from journal.selectors.alerts import open_alert_counts
from journal.services import alerts as alert_services
from journal.services.alerts import Raising, alert_acknowledge, alert_raise, alert_resolve, alerts_raise
from journal.services.entries import entry_create
from journal.tasks import check_disengagement
from tests.conftest import client_for
from tests.factories import care_team_add, enrolled_patient
from tests.timeutil import iso_ago

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")


def evidence(**figures) -> list[dict]:
    return [{"at": "2026-03-10T17:00:00Z", **figures}]


def raise_alert(patient, rule="use_reported", **figures):
    return alert_raise(patient=patient, rule=rule, evidence=evidence(**figures), now=datetime.now(UTC))


@pytest.fixture
def opened(monkeypatch):
    """A spy on the alert_opened hook, next to whatever handlers the apps registered."""
    seen: list[Alert] = []
    monkeypatch.setattr(
        hooks.alert_opened, "_handlers", [*hooks.alert_opened._handlers, lambda alert: seen.append(alert)]
    )
    return seen


# --- Raising ------------------------------------------------------------------------------------------


@pytest.fixture(params=["one upsert", "orm steps"])
def raising_path(request, monkeypatch):
    """PostgreSQL raises in one upsert; SQLite (the embedded demo) in ORM steps. Both must behave
    alike, so the raising tests run through each on PostgreSQL."""
    if request.param == "orm steps":
        monkeypatch.setattr(alert_services, "_upsert", alert_services._insert_or_append)
    return request.param


def test_a_second_trigger_adds_evidence_to_the_open_alert_and_notifies_once(cast, opened, raising_path):
    first = raise_alert(cast.patient, n=1)
    assert first is not None and first.status == "open"
    assert raise_alert(cast.patient, n=2) is None
    alert = Alert.objects.get()
    assert [item["n"] for item in alert.evidence] == [1, 2]
    assert alert.last_fired_at >= alert.opened_at
    assert opened == [first]


def test_an_acknowledged_alert_still_collects_evidence(cast, opened, raising_path):
    alert_acknowledge(alert=raise_alert(cast.patient, n=1), by=cast.clinician, note="")
    raise_alert(cast.patient, n=2)
    assert len(Alert.objects.get().evidence) == 2
    assert len(opened) == 1


def test_after_resolving_a_new_trigger_opens_a_new_alert(cast, opened, raising_path):
    alert_resolve(alert=raise_alert(cast.patient, n=1), by=cast.clinician, note="Talked it through.")
    raise_alert(cast.patient, n=2)
    assert sorted(Alert.objects.values_list("status", flat=True)) == ["open", "resolved"]
    assert len(opened) == 2


def test_other_rules_and_patients_get_their_own_alerts(cast, opened, raising_path):
    raise_alert(cast.patient, rule="use_reported")
    raise_alert(cast.patient, rule="craving_high")
    raise_alert(cast.other_patient, rule="use_reported")
    assert Alert.objects.count() == 3
    assert len(opened) == 3


def test_evidence_keeps_the_newest_fifty(cast, raising_path):
    for n in range(55):
        raise_alert(cast.patient, n=n)
    assert [item["n"] for item in Alert.objects.get().evidence] == list(range(5, 55))


def test_one_call_opens_some_alerts_and_appends_to_others_in_order(cast, opened, raising_path):
    first = raise_alert(cast.patient, rule="use_reported", n=0)
    now = datetime.now(UTC)
    new = alerts_raise(
        raisings=[
            Raising(cast.patient.pk, "use_reported", evidence(n=1)),
            Raising(cast.patient.pk, "craving_high", evidence(n=2)),
            Raising(cast.patient.pk, "use_reported", evidence(n=3)),
            Raising(cast.other_patient.pk, "use_reported", evidence(n=4)),
        ],
        now=now,
    )
    assert sorted((alert.patient_id, alert.rule) for alert in new) == sorted(
        [(cast.patient.pk, "craving_high"), (cast.other_patient.pk, "use_reported")]
    )
    assert {alert.pk for alert in new} == set(
        Alert.objects.exclude(pk=first.pk).values_list("pk", flat=True)
    )  # what it returns is what it stored
    appended = Alert.objects.get(pk=first.pk)
    assert [item["n"] for item in appended.evidence] == [0, 1, 3]
    assert appended.last_fired_at == now and appended.opened_at == first.opened_at
    assert [alert.pk for alert in opened] == [first.pk, *(alert.pk for alert in new)]


@pytest.mark.django_db(transaction=True)
def test_two_writers_racing_make_one_alert_with_both_pieces_of_evidence(cast, raising_path):
    """Beat's disengagement check holds no journal lock, so the partial unique index decides."""
    barrier = threading.Barrier(2)
    errors = []

    def writer(n):
        try:
            barrier.wait(timeout=5)
            raise_alert(cast.patient, rule="disengaged", n=n)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    alert = Alert.objects.get()
    assert sorted(item["n"] for item in alert.evidence) == [1, 2]


# --- Acknowledge and resolve ---------------------------------------------------------------------------


def test_acknowledge_then_resolve_keeps_who_and_when_of_each_step(cast, clients):
    alert = raise_alert(cast.patient)
    t1 = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    with time_machine.travel(t1, tick=False):
        clinician = client_for(cast.clinician)
        response = clinician.post(f"/api/v1/alerts/{alert.id}/acknowledge/", {"note": "Calling today."}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_at"] == "2026-03-10T14:00:00Z"
    assert body["acknowledged_by"] == {
        "id": str(cast.clinician.id),
        "name": cast.clinician.display_name,
        "email": cast.clinician.email,
    }
    assert body["acknowledge_note"] == "Calling today."
    with time_machine.travel(t1 + timedelta(hours=2), tick=False):
        clinician = client_for(cast.clinician)
        response = clinician.post(f"/api/v1/alerts/{alert.id}/resolve/", {"note": "Spoke, plan agreed."}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["resolved_at"], body["resolve_note"]) == (
        "resolved",
        "2026-03-10T16:00:00Z",
        "Spoke, plan agreed.",
    )
    assert body["resolved_by"]["id"] == str(cast.clinician.id)
    assert body["acknowledged_at"] == "2026-03-10T14:00:00Z"  # the first step stays


def test_resolving_an_open_alert_records_no_acknowledgement(cast, clients):
    alert = raise_alert(cast.patient)
    body = clients.clinician.post(f"/api/v1/alerts/{alert.id}/resolve/", {"note": "Seen."}, format="json").json()
    assert body["status"] == "resolved"
    assert body["acknowledged_at"] is None and body["acknowledged_by"] is None


def test_acknowledging_without_a_note_is_fine(cast, clients):
    alert = raise_alert(cast.patient)
    response = clients.clinician.post(f"/api/v1/alerts/{alert.id}/acknowledge/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["acknowledge_note"] == ""


def test_acknowledging_a_resolved_or_acknowledged_alert_is_409(cast, clients):
    alert = raise_alert(cast.patient)
    url = f"/api/v1/alerts/{alert.id}/acknowledge/"
    assert clients.clinician.post(url, {}, format="json").status_code == 200
    again = clients.clinician.post(url, {}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    clients.clinician.post(f"/api/v1/alerts/{alert.id}/resolve/", {"note": "Done."}, format="json")
    assert clients.clinician.post(url, {}, format="json").status_code == 409
    resolved_again = clients.clinician.post(f"/api/v1/alerts/{alert.id}/resolve/", {"note": "x"}, format="json")
    assert resolved_again.status_code == 409
    alert.refresh_from_db()
    assert alert.resolve_note == "Done."


@pytest.mark.parametrize(
    "body", [{}, {"note": ""}, {"note": "   "}, {"note": None}, {"note": "a\x00b"}, {"note": "x" * 2001}]
)
def test_resolve_needs_a_real_note(cast, clients, body):
    alert = raise_alert(cast.patient)
    response = clients.clinician.post(f"/api/v1/alerts/{alert.id}/resolve/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "note" in error["fields"]
    alert.refresh_from_db()
    assert alert.status == "open"


def test_notes_are_encrypted_at_rest(cast, clients):
    alert = raise_alert(cast.patient)
    clients.clinician.post(f"/api/v1/alerts/{alert.id}/acknowledge/", {"note": "ack secret"}, format="json")
    clients.clinician.post(f"/api/v1/alerts/{alert.id}/resolve/", {"note": "resolve secret"}, format="json")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT acknowledge_note, resolve_note FROM {Alert._meta.db_table} WHERE id = %s", [alert.id])
        raw = cursor.fetchone()
    assert all(raw) and "secret" not in " ".join(raw)
    alert.refresh_from_db()
    assert (alert.acknowledge_note, alert.resolve_note) == ("ack secret", "resolve secret")


# --- Who sees what --------------------------------------------------------------------------------------


def test_patients_get_403_on_every_alert_route(cast, clients):
    alert = raise_alert(cast.patient)
    for method, url in [
        ("get", "/api/v1/alerts/"),
        ("get", f"/api/v1/alerts/{alert.id}/"),
        ("post", f"/api/v1/alerts/{alert.id}/acknowledge/"),
        ("post", f"/api/v1/alerts/{alert.id}/resolve/"),
    ]:
        response = getattr(clients.patient, method)(url, {"note": "x"} if method == "post" else None, format="json")
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "permission_denied"


def test_an_outsider_gets_404_and_changes_nothing(cast, clients):
    alert = raise_alert(cast.patient)
    for client in (clients.outsider, clients.admin):
        assert client.get(f"/api/v1/alerts/{alert.id}/").status_code == 404
        for step in ("acknowledge", "resolve"):
            response = client.post(f"/api/v1/alerts/{alert.id}/{step}/", {"note": "x"}, format="json")
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
    alert.refresh_from_db()
    assert alert.status == "open"
    assert clients.clinician.get(f"/api/v1/alerts/{uuid.uuid4()}/").status_code == 404


def test_an_outsider_sees_none_of_the_patients_alerts_in_list_or_counts(cast, clients):
    raise_alert(cast.patient)
    raise_alert(cast.other_patient, rule="craving_high")
    own = clients.outsider.get("/api/v1/alerts/").json()["results"]
    assert [row["patient"]["display_name"] for row in own] == ["Olive"]
    filtered = clients.outsider.get("/api/v1/alerts/", {"patient": str(cast.patient.id)}).json()
    assert filtered["results"] == []
    assert clients.admin.get("/api/v1/alerts/").json()["results"] == []
    assert set(open_alert_counts(Patient.objects.filter(care_team_memberships__clinician=cast.outsider))) == {
        cast.other_patient.id
    }


def test_detail_and_steps_are_access_logged(cast, clients):
    alert = raise_alert(cast.patient)
    clients.clinician.get(f"/api/v1/alerts/{alert.id}/")
    clients.clinician.post(f"/api/v1/alerts/{alert.id}/acknowledge/", {}, format="json")
    rows = AccessLog.objects.filter(patient=cast.patient, actor=cast.clinician).order_by("at", "id")
    assert [(row.action, row.path) for row in rows] == [
        ("view", f"/api/v1/alerts/{alert.id}/"),
        ("update", f"/api/v1/alerts/{alert.id}/acknowledge/"),
    ]


# --- The list ------------------------------------------------------------------------------------------


def test_list_is_newest_first_with_the_rows_fields(cast, clients):
    with time_machine.travel(datetime.now(UTC) - timedelta(hours=2)):
        old = raise_alert(cast.patient, rule="craving_high", days=["2026-03-09"])
    new = raise_alert(cast.patient, rule="use_reported")
    body = clients.clinician.get("/api/v1/alerts/").json()
    assert [row["id"] for row in body["results"]] == [str(new.id), str(old.id)]
    row = body["results"][1]
    assert row["patient"] == {"id": str(cast.patient.id), "display_name": "Pat"}
    assert (row["rule"], row["severity"], row["status"]) == ("craving_high", "high", "open")
    assert row["evidence"][0]["days"] == ["2026-03-09"]
    assert row["acknowledged_by"] is None and row["resolved_by"] is None
    assert set(row) >= {"opened_at", "last_fired_at", "acknowledge_note", "resolved_at", "resolve_note"}
    assert set(body) == {"next", "previous", "results"}


def test_list_filters(cast, clients):
    use = raise_alert(cast.patient, rule="use_reported")
    rising = raise_alert(cast.patient, rule="craving_rising")
    alert_acknowledge(alert=rising, by=cast.clinician, note="")

    def ids(**params):
        return [row["id"] for row in clients.clinician.get("/api/v1/alerts/", params).json()["results"]]

    assert ids(status="open") == [str(use.id)]
    assert ids(status="acknowledged") == [str(rising.id)]
    assert ids(severity="medium") == [str(rising.id)]
    assert ids(severity="high", status="open", patient=str(cast.patient.id)) == [str(use.id)]
    assert len(ids(status="", severity="")) == 2  # empty parameters filter nothing


@pytest.mark.parametrize(
    "params", [{"status": "closed"}, {"severity": "critical"}, {"patient": "not-a-uuid"}, {"page_size": "x"}]
)
def test_bad_filters_are_400_in_the_error_shape(cast, clients, params):
    response = clients.clinician.get("/api/v1/alerts/", params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_list_pages_with_a_cursor(cast, clients):
    for rule in ("use_reported", "craving_high", "mood_low"):
        raise_alert(cast.patient, rule=rule)
    first = clients.clinician.get("/api/v1/alerts/", {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = clients.clinician.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None


def test_list_logs_one_row_per_patient_on_the_page(cast, clients):
    third = enrolled_patient(cast.patient.clinic, display_name="Tess")
    care_team_add(third, cast.clinician)
    raise_alert(cast.patient, rule="use_reported")
    raise_alert(cast.patient, rule="craving_high")
    raise_alert(third)
    before = AccessLog.objects.count()
    clients.clinician.get("/api/v1/alerts/")
    rows = AccessLog.objects.order_by("id")[before:]
    assert sorted((row.patient_id, row.action) for row in rows) == sorted(
        [(cast.patient.id, "list"), (third.id, "list")]
    )


def test_list_takes_the_same_queries_however_many_alerts(cast, clients, django_assert_num_queries):
    patients = [cast.patient]
    for n in range(12):
        patient = enrolled_patient(cast.patient.clinic, display_name=f"P{n}")
        care_team_add(patient, cast.clinician)
        patients.append(patient)
    pairs = [(patient, rule) for patient in patients for rule in ("use_reported", "craving_high")]
    for count in (2, 26):
        for n, (patient, rule) in enumerate(pairs[Alert.objects.count() : count]):
            alert = raise_alert(patient, rule=rule)
            if n % 3 == 1:
                alert_acknowledge(alert=alert, by=cast.clinician, note="seen")
            elif n % 3 == 2:
                alert_resolve(alert=alert, by=cast.outsider, note="done")
        # Queries: 1 the sign-in with its user; 1 the page with its patients and clinicians joined;
        # 1 the access-log insert (one row per patient on the page).
        with django_assert_num_queries(3):
            response = clients.clinician.get("/api/v1/alerts/")
        assert len(response.json()["results"]) == count


# --- Disengagement (beat) ------------------------------------------------------------------------------

# 13:00 in New York on 10 March: the last 3 complete journal days are 7, 8 and 9 March.
NOON = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)


def enrolled_days_ago(patient, days: int) -> None:
    User.objects.filter(pk=patient.user_id).update(date_joined=NOON - timedelta(days=days))


def log_on(patient, day: int, craving: int = 3):
    """An entry at 09:00 New York on `day` March 2026."""
    occurred = datetime(2026, 3, day, 9, 0, tzinfo=NEW_YORK)
    with time_machine.travel(occurred + timedelta(minutes=1), tick=False):
        entry_create(patient=patient, data={"kind": "craving", "occurred_at": occurred, "craving": craving})


def check(at: datetime = NOON) -> int:
    with time_machine.travel(at, tick=False):
        return check_disengagement()


@pytest.fixture
def silent(cast):
    """The cast's patients enrolled 30 days ago; Pat last wrote on 6 March, Olive on 9 March."""
    for patient in (cast.patient, cast.other_patient):
        enrolled_days_ago(patient, 30)
    log_on(cast.patient, 6)
    log_on(cast.other_patient, 9)
    return cast


def test_no_entry_on_the_last_three_complete_days_raises_disengaged(silent, opened):
    assert check() == 1
    alert = Alert.objects.get()
    assert (alert.patient_id, alert.rule, alert.severity) == (silent.patient.id, "disengaged", "low")
    assert alert.evidence[0]["last_entry_day"] == "2026-03-06"
    assert alert.evidence[0]["days"] == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert opened == [alert]


def test_two_silent_days_are_not_yet_disengaged(silent):
    assert check(NOON - timedelta(days=1)) == 0
    assert not Alert.objects.exists()


def test_an_entry_today_counts_as_engaged(silent):
    log_on(silent.patient, 10)
    assert check() == 0


def test_each_silence_is_raised_once_even_after_it_is_resolved(silent):
    assert check() == 1
    assert check(NOON + timedelta(hours=1)) == 0
    alert = Alert.objects.get()
    assert len(alert.evidence) == 1  # no hourly evidence either
    alert_resolve(alert=alert, by=silent.clinician, note="On holiday, said so.")
    assert check(NOON + timedelta(days=2)) == 0
    assert Alert.objects.count() == 1


def test_a_new_silence_after_the_patient_came_back_is_raised_again(silent):
    check()
    log_on(silent.patient, 11)
    assert check(NOON + timedelta(days=2)) == 0
    # Back on 11 March, silent on the 12th, 13th and 14th: raised on the 15th, on the open alert.
    # Olive (silent since the 9th) gets her first; Pat's new silence goes on his unresolved alert.
    assert check(NOON + timedelta(days=5)) == 1
    alert = Alert.objects.get(patient=silent.patient)
    assert [item["last_entry_day"] for item in alert.evidence] == ["2026-03-06", "2026-03-11"]


def test_recently_enrolled_patients_and_paused_ones_do_not_fire(silent):
    enrolled_days_ago(silent.patient, 3)  # enrolled on 7 March: not three whole days yet
    Patient.objects.filter(pk=silent.other_patient.pk).update(status="paused")
    assert check() == 0
    enrolled_days_ago(silent.patient, 4)  # enrolled on 6 March
    assert check() == 1


def test_a_patient_who_never_wrote_is_disengaged_from_enrolment(cast):
    enrolled_days_ago(cast.patient, 5)
    enrolled_days_ago(cast.other_patient, 30)
    log_on(cast.other_patient, 9)
    assert check() == 1
    assert Alert.objects.get().evidence[0]["last_entry_day"] is None


def test_disengaged_days_are_the_clinics(silent):
    clinic = silent.patient.clinic
    clinic.alert_disengaged_days = 4
    clinic.save()
    assert check() == 0
    clinic.alert_disengaged_days = 2
    clinic.save()
    assert check() == 1


def test_the_check_takes_the_same_queries_however_many_patients(silent, monkeypatch, django_assert_max_num_queries):
    # Counted without the notification handlers: what they write per alert is theirs to count.
    monkeypatch.setattr(hooks.alert_opened, "_handlers", [])
    check()  # Pat's alert exists; the rest are quiet
    for n in range(8):
        patient = enrolled_patient(silent.patient.clinic, display_name=f"Q{n}")
        enrolled_days_ago(patient, 30)
    # 1 the candidates; the raise: savepoint, insert, which were inserted (+ its savepoint release).
    with django_assert_max_num_queries(6):
        assert check() == 8


# --- The support block in the patient's responses ------------------------------------------------------


def test_a_use_entry_answers_with_support(clients):
    response = clients.patient.post(
        "/api/v1/entries/",
        {"kind": "use", "substance": "alcohol", "occurred_at": iso_ago(hours=1)},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["support"]["resources"]


def test_a_retried_use_entry_answers_with_the_same_support_and_raises_nothing_more(clients):
    # The phone retries because the first answer was lost: the patient must still see the resources.
    entry = {"id": str(uuid.uuid4()), "kind": "use", "substance": "alcohol", "occurred_at": iso_ago(hours=1)}
    first = clients.patient.post("/api/v1/entries/", entry, format="json")
    retry = clients.patient.post("/api/v1/entries/", entry, format="json")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["support"] == first.json()["support"]
    assert Alert.objects.get().evidence == Alert.objects.get().evidence[:1]  # one firing, not two
    calm = {"id": str(uuid.uuid4()), "kind": "craving", "craving": 2, "occurred_at": iso_ago(hours=1)}
    clients.patient.post("/api/v1/entries/", calm, format="json")
    assert "support" not in clients.patient.post("/api/v1/entries/", calm, format="json").json()


def test_a_self_harm_answer_answers_with_the_urgent_support(cast, clients):
    response = clients.patient.post(
        "/api/v1/assessments/",
        {"instrument": "phq9", "answers": [0] * 8 + [1], "completed_at": iso_ago(minutes=5)},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["support"]["resources"][0]["phone"] == "988"
    assert Alert.objects.get().rule == "phq9_self_harm"


def _names(support: dict) -> list[str]:
    return [resource["name"] for resource in support["resources"]]


def test_the_support_resources_are_the_clinics_for_that_severity(cast, clients):
    """SPEC §5 defaults: urgent → 988 and the clinic's emergency line; high → the clinic's contact
    and the SAMHSA helpline. A resource the clinic tagged with no severity shows for both."""
    clinic = cast.patient.clinic
    clinic.contact_phone, clinic.emergency_phone = "555-0100", "555-0199"
    clinic.crisis_resources = [*clinic.crisis_resources, {"name": "Local peer line", "phone": "555-0142", "sms": "",
                                                          "url": ""}]  # fmt: skip
    clinic.save()
    urgent = clients.patient.post(
        "/api/v1/assessments/",
        {"instrument": "phq9", "answers": [0] * 8 + [1], "completed_at": iso_ago(minutes=5)},
        format="json",
    ).json()["support"]
    assert _names(urgent) == ["988 Suicide & Crisis Lifeline", f"{clinic.name} emergency line", "Local peer line"]
    high = clients.patient.post(
        "/api/v1/entries/", {"kind": "use", "substance": "alcohol", "occurred_at": iso_ago(hours=1)}, format="json"
    ).json()["support"]
    assert _names(high) == [clinic.name, "SAMHSA National Helpline", "Local peer line"]
    assert all(set(resource) == {"name", "phone", "sms", "url"} for resource in urgent["resources"] + high["resources"])
    # The app's help screen lists them all, in the documented shape.
    me = clients.patient.get("/api/v1/me/").json()["crisis_resources"]
    assert [r["name"] for r in me] == ["988 Suicide & Crisis Lifeline", "SAMHSA National Helpline", "Local peer line"]
    assert all(set(resource) == {"name", "phone", "sms", "url"} for resource in me)


def test_resources_saved_in_an_odd_shape_never_cost_a_lapse_its_entry(cast, clients):
    """Rows saved before validation, or by hand: the support block and /me read them leniently,
    since the support block runs inside the write's transaction and a 500 there would lose it."""
    clinic = cast.patient.clinic
    clinic.crisis_resources = [
        {"name": "No sms or url", "phone": "555-0101"},
        {"name": "Odd severities", "phone": "555-0102", "severities": None},
        "not an object",
        {"phone": "no name"},
    ]
    clinic.save()  # save() does not validate: the shape a hand edit or an old row could have
    response = clients.patient.post(
        "/api/v1/entries/", {"kind": "use", "substance": "alcohol", "occurred_at": iso_ago(hours=1)}, format="json"
    )
    assert response.status_code == 201, response.content
    assert _names(response.json()["support"]) == ["No sms or url", "Odd severities"]
    assert response.json()["support"]["resources"][0] == {"name": "No sms or url", "phone": "555-0101", "sms": "",
                                                          "url": ""}  # fmt: skip
    me = clients.patient.get("/api/v1/me/")
    assert me.status_code == 200
    assert [r["name"] for r in me.json()["crisis_resources"]] == ["No sms or url", "Odd severities"]


@pytest.mark.parametrize(
    "resources",
    [{"name": "x"}, ["x"], [{"phone": "988"}], [{"name": "x", "sms": 988}], [{"name": "x", "severities": "urgent"}],
     [{"name": "x", "severities": ["low"]}], [{"name": "x", "severities": None}]],
)  # fmt: skip
def test_the_admin_can_save_only_resources_the_app_can_read(cast, resources):
    from django.core.exceptions import ValidationError

    clinic = cast.patient.clinic
    clinic.crisis_resources = resources
    with pytest.raises(ValidationError) as error:
        clinic.full_clean()
    assert "crisis_resources" in error.value.message_dict
    clinic.crisis_resources = [
        {"name": "Peer line", "phone": "555", "severities": ["high"]},
        {"name": "Web", "url": "u"},
    ]
    clinic.full_clean()  # the documented shapes pass


def test_existing_clinics_default_resources_are_tagged_by_the_migration(cast):
    from django.apps import apps

    tag_defaults = importlib.import_module("accounts.migrations.0005_crisis_resources_per_severity").tag_defaults
    clinic = cast.patient.clinic
    untagged = [{k: v for k, v in r.items() if k != "severities"} for r in clinic.crisis_resources]
    own = {"name": "Local peer line", "phone": "555-0142", "sms": "", "url": ""}
    clinic.crisis_resources = [*untagged, own]
    clinic.save()
    tag_defaults(apps, None)
    clinic.refresh_from_db()
    assert [r.get("severities") for r in clinic.crisis_resources] == [["urgent"], ["high"], None]


def test_medium_and_low_firings_answer_without_support(cast, clients):
    for days in (2, 1, 0):
        response = clients.patient.post(
            "/api/v1/entries/",
            {"kind": "check_in", "craving": 0, "mood": 1, "occurred_at": iso_ago(days=days, minutes=1)},
            format="json",
        )
        assert response.status_code == 201
        assert "support" not in response.json()
    assert Alert.objects.get().rule == "mood_low"  # three low journal days in a row: medium


def test_a_sync_that_fires_high_answers_with_one_support_block(clients):
    items = [
        {"id": str(uuid.uuid4()), "kind": "craving", "craving": 2, "occurred_at": iso_ago(hours=2)},
        {"id": str(uuid.uuid4()), "kind": "use", "substance": "cocaine", "occurred_at": iso_ago(hours=1)},
    ]
    body = clients.patient.post("/api/v1/entries/sync/", {"entries": items}, format="json").json()
    assert body["support"]["resources"]
    assert Alert.objects.get().rule == "use_reported"
