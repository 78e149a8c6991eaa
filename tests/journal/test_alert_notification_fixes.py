"""Alert notifications (SPEC §9) where raising and sending meet: an urgent trigger on an acknowledged
alert tells the care team again, and a sweep after an outage sends each recipient the latest overdue
round, not every one of them.

Raising goes through journal's service (both raising paths, as in test_alerts.py) or the API; FCM
and SMTP are the loopback servers, and the test plays beat and the worker at chosen times.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from backend import queueing
from journal.models import Alert, AlertRule, AlertSeverity, AlertStatus
from journal.services import alerts as alert_services
from journal.services.alerts import alert_acknowledge, alert_raise, alert_resolve
from reminders import tasks
from reminders.models import AlertNotification
from reminders.services import alert_notifications as notifications
from tests.factories import enrolled_patient
from tests.reminders import conftest as reminders_conftest
from tests.reminders import test_alert_notifications as notification_tests
from tests.reminders.test_alert_notifications import PATIENT_NAME, beat, open_alert, opened_at, statuses
from tests.reminders.test_delivery import assert_neutral

pytestmark = pytest.mark.django_db

SELF_HARM = AlertRule.PHQ9_SELF_HARM

# tests/reminders' fixtures: the FCM and SMTP loopback servers, the patient, the cast's phones.
fcm = reminders_conftest.fcm
smtp = reminders_conftest.smtp
patient = notification_tests.patient
phones = notification_tests.phones


@pytest.fixture(params=["one upsert", "orm steps"])
def raising_path(request, monkeypatch):
    """PostgreSQL raises in one upsert, SQLite in ORM steps: both must tell the care team alike."""
    if request.param == "orm steps":
        monkeypatch.setattr(alert_services, "_upsert", alert_services._insert_or_append)
    return request.param


def fire(patient, rule=SELF_HARM, **figures) -> Alert | None:
    return alert_raise(
        patient=patient, rule=rule, evidence=[{"at": "2026-03-10T17:00:00Z", **figures}], now=datetime.now(UTC)
    )


def rounds_of(alert) -> list[tuple[str, str, int, bool, str]]:
    return sorted(
        AlertNotification.objects.filter(alert=alert).values_list(
            "recipient__email", "channel", "round", "escalation", "status"
        )
    )


def acknowledged_after_round_zero(patient, by) -> Alert:
    """An urgent alert whose round 0 went out and that the clinician then acknowledged."""
    alert = fire(patient, n=1)
    assert sorted(beat(timezone.now())) == ["sent", "sent"]
    alert_acknowledge(alert=alert, by=by, note="Called, safe for tonight.")
    assert beat(timezone.now()) == []  # the sweep cancels rounds 1–3
    return alert


# --- A new urgent trigger on an acknowledged alert -----------------------------------------------


def test_a_new_self_harm_answer_after_acknowledgement_is_sent_to_the_care_team_again(
    fcm, smtp, cast, patient, phones, raising_path, settings
):
    alert = acknowledged_after_round_zero(patient, cast.clinician)
    before = len(smtp.messages)

    assert fire(patient, n=2) is None  # no second alert: the acknowledged one took the evidence

    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert (alert.acknowledged_by, alert.acknowledge_note) == (cast.clinician, "Called, safe for tonight.")
    assert [item["n"] for item in alert.evidence] == [1, 2]
    renewal = [row for row in rounds_of(alert) if row[2] >= 4]
    # The care team, both ways; not the admin: someone acknowledged, and the team is there.
    assert renewal == [
        (cast.clinician.email, "email", 4, False, "scheduled"),
        (cast.clinician.email, "push", 4, False, "scheduled"),
    ]

    assert sorted(beat(timezone.now())) == ["sent", "sent"]
    assert beat(timezone.now() + timedelta(hours=1)) == []  # one round, not four
    [mail] = smtp.messages[before:]
    assert mail.rcpt_tos == [cast.clinician.email]
    assert mail.subject == "Interlude: a patient needs your attention"
    assert f"{settings.PUBLIC_BASE_URL}/dashboard/alerts/?alert={alert.pk}" in mail.text
    assert "something new since it was acknowledged" in mail.text
    assert "not been acknowledged" not in mail.text
    push = fcm.accepted[-1].message
    assert push["notification"] == {"title": "Interlude", "body": "A patient needs your attention"}
    assert push["android"]["collapse_key"] == f"alert-{alert.pk}-4"  # a new message, not round 0 replaced


def test_the_renewal_says_nothing_about_the_patient_the_rule_or_the_severity(fcm, smtp, cast, patient, phones):
    alert = acknowledged_after_round_zero(patient, cast.clinician)
    before = len(smtp.messages)
    fire(patient, n=2)
    beat(timezone.now())

    forbidden = {*PATIENT_NAME.lower().split(), *patient.user.display_name.lower().split()}
    forbidden |= {part for rule in AlertRule for part in rule.value.split("_")} | set(AlertSeverity.values)
    [mail] = smtp.messages[before:]
    for text in (mail.subject, mail.text, *fcm.accepted[-1].message["notification"].values()):
        assert not set(re.findall(r"[a-z0-9]+", text.lower())) & forbidden, text
        assert_neutral(text)
    assert fcm.accepted[-1].message["data"] == {"kind": "alert", "alert_id": str(alert.pk), "round": "4"}


def test_each_new_trigger_after_acknowledgement_is_a_round_of_its_own(fcm, smtp, cast, patient, phones, raising_path):
    alert = acknowledged_after_round_zero(patient, cast.clinician)
    fire(patient, n=2)
    assert sorted(beat(timezone.now())) == ["sent", "sent"]
    fire(patient, n=3)
    assert sorted(beat(timezone.now())) == ["sent", "sent"]
    assert {row[2] for row in rounds_of(alert) if row[4] == "sent"} == {0, 4, 5}


def test_the_renewal_is_published_after_commit_on_the_urgent_queue(
    fcm, cast, patient, phones, monkeypatch, django_capture_on_commit_callbacks, raising_path
):
    alert = acknowledged_after_round_zero(patient, cast.clinician)
    calls = []
    monkeypatch.setattr(queueing, "publish", lambda task, *args, queue=None: calls.append((task, args, queue)) or True)

    with django_capture_on_commit_callbacks(execute=True):
        fire(patient, n=2)

    renewal = {str(pk) for pk in AlertNotification.objects.filter(alert=alert, round=4).values_list("pk", flat=True)}
    [(task, (ids,), queue)] = calls
    assert (task, queue, set(ids)) == (tasks.send_alert_notifications, "alerts_urgent", renewal)
    assert len(renewal) == 2


def test_new_evidence_while_rounds_are_running_or_on_a_non_urgent_alert_adds_no_round(
    fcm, smtp, cast, patient, phones, raising_path
):
    urgent = fire(patient, n=1)  # open: its rounds are running already, the next one carries it
    fire(patient, n=2)
    use = fire(patient, AlertRule.USE_REPORTED, n=1)
    alert_acknowledge(alert=use, by=cast.clinician)
    fire(patient, AlertRule.USE_REPORTED, n=2)  # high, acknowledged: the inbox shows it

    assert {row[2] for row in rounds_of(urgent)} == {0, 1, 2, 3}
    assert {row[2] for row in rounds_of(use)} == {0}


def test_a_new_self_harm_answer_after_the_rounds_of_an_unacknowledged_alert_pages_again(
    fcm, smtp, cast, patient, phones, raising_path
):
    """Nobody acknowledged it, its four rounds went out, and two days later the patient answers
    item 9 again: the care team and, since it is still unacknowledged, the admins hear of it."""
    alert = fire(patient, n=1)
    opened = timezone.now()
    for n in range(4):
        beat(opened + n * timedelta(minutes=15))
    later = opened + timedelta(days=2)
    with time_machine.travel(later, tick=False):
        assert fire(patient, n=2) is None
    renewal = [row for row in rounds_of(alert) if row[2] == 4]
    assert {(email, escalation) for email, _, _, escalation, _ in renewal} == {
        (cast.clinician.email, False),
        (cast.admin.email, True),
    }
    before = len(smtp.messages)
    assert sorted(beat(later)) == ["sent"] * len(renewal)
    carer = next(m for m in smtp.messages[before:] if m.rcpt_tos == [cast.clinician.email])
    assert "It has not been acknowledged yet, and there is something new" in carer.text
    with time_machine.travel(later + timedelta(minutes=1), tick=False):
        fire(patient, n=3)  # the renewal just went out: a third answer is a round of its own
    assert {row[2] for row in rounds_of(alert)} == {0, 1, 2, 3, 4, 5}


def test_a_renewal_for_an_alert_with_no_care_team_goes_to_the_admins(fcm, smtp, cast, phones, raising_path):
    lonely = enrolled_patient(cast.admin.clinic, display_name="Nobody's")
    alert = fire(lonely, n=1)
    alert_acknowledge(alert=alert, by=cast.admin)
    beat(timezone.now())
    before = len(smtp.messages)

    fire(lonely, n=2)
    assert sorted(beat(timezone.now())) == ["sent", "sent"]
    [mail] = smtp.messages[before:]
    assert mail.rcpt_tos == [cast.admin.email]
    assert "something new since it was acknowledged" in mail.text
    assert "nobody on the patient's care team has acknowledged" not in mail.text


def test_resolving_cancels_a_renewal_not_yet_sent(fcm, smtp, cast, patient, phones):
    alert = acknowledged_after_round_zero(patient, cast.clinician)
    fire(patient, n=2)
    alert_resolve(alert=Alert.objects.get(pk=alert.pk), by=cast.clinician, note="Seen in clinic.")

    assert beat(timezone.now()) == []
    assert {row[4] for row in rounds_of(alert) if row[2] == 4} == {"cancelled"}


def test_a_second_phq9_through_the_api_after_acknowledgement_pages_the_care_team(
    fcm, smtp, cast, clients, patient, phones
):
    def phq9(item9: int):
        response = clients.patient.post(
            "/api/v1/assessments/",
            {"instrument": "phq9", "answers": [1] * 8 + [item9], "completed_at": timezone.now().isoformat()},
            format="json",
        )
        assert response.status_code == 201, response.content

    phq9(2)
    alert = Alert.objects.get(patient=patient, rule=SELF_HARM)
    beat(timezone.now())
    response = clients.clinician.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"note": "called"}, format="json")
    assert response.status_code == 200
    before = len(smtp.messages)

    phq9(3)
    assert sorted(beat(timezone.now())) == ["sent", "sent"]
    assert [m.rcpt_tos for m in smtp.messages[before:]] == [[cast.clinician.email]]
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.ACKNOWLEDGED


# --- After an outage: the latest overdue round, once ---------------------------------------------


def test_after_an_outage_each_recipient_gets_only_the_latest_overdue_round(fcm, smtp, cast, patient, phones):
    alert = open_alert(patient)  # round 0's kick was lost, and beat was down for 50 minutes
    start = opened_at(alert)

    assert sorted(beat(start + timedelta(minutes=50))) == ["sent"] * 4  # the carer and the admin, both ways

    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == [cast.admin.email, cast.clinician.email]
    assert sorted(p.message["android"]["collapse_key"] for p in fcm.accepted) == [f"alert-{alert.pk}-3"] * 2
    carer = {key[1:]: status for key, status in statuses(alert).items() if key[0] == cast.clinician.email}
    assert carer == {(channel, n): "cancelled" if n < 3 else "sent" for channel in ("email", "push") for n in range(4)}
    superseded = AlertNotification.objects.filter(alert=alert, last_error="superseded")
    assert superseded.count() == 2 * 3 + 2 * 2  # the carer's rounds 0–2, the admin's 1–2
    assert beat(start + timedelta(hours=2)) == []


def test_after_a_short_outage_the_rounds_still_due_later_go_out_on_time(fcm, smtp, cast, patient, phones):
    alert = open_alert(patient)
    start = opened_at(alert)

    assert sorted(beat(start + timedelta(minutes=20))) == ["sent"] * 4  # round 1, to the carer and the admin
    assert {m.rcpt_tos[0] for m in smtp.messages} == {cast.clinician.email, cast.admin.email}
    assert statuses(alert)[(cast.clinician.email, "email", 0)] == "cancelled"
    assert sorted(beat(start + timedelta(minutes=30))) == ["sent"] * 4  # round 2 as planned
    assert len(smtp.messages) == 4


@pytest.mark.parametrize("status", ["open", "acknowledged", "resolved"])
def test_the_sweeps_and_the_sends_rule_for_a_moot_round_agree(fcm, cast, patient, phones, status):
    """MOOT (SQL, the sweeper's cancel and claim) and _moot (a loaded row, at send time) are one
    rule written twice: every round of every status gets the same answer from both."""
    alert = fire(patient, n=1)
    renewal = notifications.alert_notifications_renew(alert=Alert.objects.get(pk=alert.pk))
    assert renewal == []  # rounds are still scheduled: nothing to renew yet
    AlertNotification.objects.filter(alert=alert, round=3).update(round=4)  # stand in for a renewal
    Alert.objects.filter(pk=alert.pk).update(
        status=status,
        acknowledged_at=timezone.now() if status != "open" else None,
        acknowledged_by=cast.clinician if status != "open" else None,
        resolved_at=timezone.now() if status == "resolved" else None,
        resolved_by=cast.clinician if status == "resolved" else None,
    )
    rows = list(AlertNotification.objects.filter(alert=alert).select_related("alert"))
    moot_in_sql = set(
        AlertNotification.objects.filter(alert=alert).filter(notifications.MOOT).values_list("pk", flat=True)
    )
    assert {row.pk for row in rows if notifications._moot(row)} == moot_in_sql
    assert {row.round for row in rows if row.pk in moot_in_sql} == {
        "open": set(),
        "acknowledged": {0, 1, 2},
        "resolved": {0, 1, 2, 4},
    }[status]
