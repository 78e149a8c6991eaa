"""Alert notifications to the care team (SPEC §9), in process.

Alerts are opened the way journal opens them: the row, then the `alert_opened` hook, in one
transaction. FCM and SMTP are the loopback servers; the sweeper's publish is replaced by a list and
the test plays the worker, at chosen times (round 1 is "15 minutes later" without waiting).
Against a real Celery worker and Redis: test_alert_notifications_integration.py.
"""

import re
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from backend import hooks, queueing
from journal.models import SEVERITY_OF_RULE, Alert, AlertRule, AlertSeverity
from reminders import tasks
from reminders.models import AlertNotification, Device
from reminders.services import alert_notifications as notifications
from reminders.services.delivery import send_claim
from tests.factories import ClinicianFactory, care_team_add, enrolled_patient
from tests.reminders.test_delivery import assert_neutral
from tests.support.celery_worker import celery_app_broker
from tests.support.fcm_server import Reply
from tests.support.redis_server import spare_port

pytestmark = pytest.mark.django_db

PATIENT_NAME = "Quentin Marlowe"
MINUTES_15 = timedelta(minutes=15)


@pytest.fixture
def patient(cast):
    cast.patient.display_name = PATIENT_NAME
    cast.patient.save()
    return cast.patient


@pytest.fixture
def phones(cast):
    """The care-team clinician and the clinic admin each have a phone registered."""
    Device.objects.create(user=cast.clinician, platform="ios", token="token-carer-phone")
    Device.objects.create(user=cast.admin, platform="android", token="token-admin-phone")


def open_alert(patient, rule=AlertRule.PHQ9_SELF_HARM) -> Alert:
    """What journal does when a write fires a new alert."""
    with transaction.atomic():
        now = timezone.now()
        alert = Alert.objects.create(
            patient=patient, rule=rule, severity=SEVERITY_OF_RULE[rule], opened_at=now, last_fired_at=now, evidence=[]
        )
        hooks.alert_opened.call(alert=alert)
    return alert


def acknowledge(alert, by) -> None:
    Alert.objects.filter(pk=alert.pk).update(status="acknowledged", acknowledged_at=timezone.now(), acknowledged_by=by)


def rows(alert) -> set[tuple[str, str, int, bool]]:
    return set(
        AlertNotification.objects.filter(alert=alert).values_list("recipient__email", "channel", "round", "escalation")
    )


def sweep(now) -> list[tuple[str, bool]]:
    published: list[tuple[str, bool]] = []

    def publish(ids, urgent):
        published.extend((notification_id, urgent) for notification_id in ids)
        return True

    notifications.alert_notifications_sweep(now=now, publish=publish)
    return published


def beat(now) -> list[str]:
    """One sweep, then a worker sending each published id."""
    return [
        notifications.alert_notification_deliver(notification_id=pk, owner=f"test:{uuid.uuid4().hex[:12]}", now=now)
        for pk, _ in sweep(now)
    ]


def statuses(alert) -> dict[tuple[str, str, int], str]:
    return {
        (email, channel, n): status
        for email, channel, n, status in AlertNotification.objects.filter(alert=alert).values_list(
            "recipient__email", "channel", "round", "status"
        )
    }


def opened_at(alert):
    return AlertNotification.objects.filter(alert=alert, round=0).values_list("due_at", flat=True)[0]


# --- Who gets what, written with the alert ------------------------------------------------------


def test_an_urgent_alert_writes_four_rounds_per_care_team_channel_and_escalates_to_admins(fcm, cast, patient, phones):
    second = ClinicianFactory(clinic=patient.clinic, email="second@example.org")  # no phone: email only
    care_team_add(patient, second)

    alert = open_alert(patient)

    carer, admin = cast.clinician.email, cast.admin.email
    expected = {(carer, channel, n, False) for channel in ("email", "push") for n in range(4)}
    expected |= {("second@example.org", "email", n, False) for n in range(4)}
    expected |= {(admin, channel, n, True) for channel in ("email", "push") for n in (1, 2, 3)}
    assert rows(alert) == expected  # not the outsider, not the other clinic's clinician
    start = opened_at(alert)
    for notification in AlertNotification.objects.filter(alert=alert):
        assert notification.due_at == notification.next_attempt_at == start + notification.round * MINUTES_15
        assert (notification.status, notification.attempts) == ("scheduled", 0)


@pytest.mark.parametrize("rule", [AlertRule.USE_REPORTED, AlertRule.CRAVING_RISING, AlertRule.DISENGAGED])
def test_a_non_urgent_alert_writes_round_zero_for_the_care_team_only(fcm, cast, patient, phones, rule):
    alert = open_alert(patient, rule)
    assert rows(alert) == {(cast.clinician.email, "email", 0, False), (cast.clinician.email, "push", 0, False)}


@pytest.mark.parametrize(("rule", "rounds"), [(AlertRule.PHQ9_SELF_HARM, range(4)), (AlertRule.MOOD_LOW, range(1))])
def test_with_no_active_care_team_the_admins_get_every_round(fcm, cast, phones, rule, rounds):
    lonely = enrolled_patient(cast.admin.clinic, display_name="Nobody's")
    gone = ClinicianFactory(clinic=lonely.clinic, is_active=False)
    care_team_add(lonely, gone)  # a deactivated clinician is no care team
    second_admin = ClinicianFactory(clinic=lonely.clinic, email="admin2@example.org", is_clinic_admin=True)
    ClinicianFactory(clinic=lonely.clinic, email="retired-admin@example.org", is_clinic_admin=True, is_active=False)
    ClinicianFactory(email="other-clinic-admin@example.org", is_clinic_admin=True)

    alert = open_alert(lonely, rule)

    expected = {(cast.admin.email, channel, n, True) for channel in ("email", "push") for n in rounds}
    expected |= {(second_admin.email, "email", n, True) for n in rounds}
    assert rows(alert) == expected


def test_an_admin_on_the_care_team_is_notified_as_a_member_only(fcm, cast, patient):
    care_team_add(patient, cast.admin)
    alert = open_alert(patient)
    assert {(email, escalation) for email, _, _, escalation in rows(alert)} == {
        (cast.clinician.email, False),
        (cast.admin.email, False),
    }
    assert AlertNotification.objects.filter(alert=alert).count() == 8  # 2 clinicians x 4 rounds, email


def test_without_push_configured_only_email_rows_are_written(cast, patient, phones, settings):
    settings.FCM_PROJECT_ID = ""
    alert = open_alert(patient, AlertRule.USE_REPORTED)
    assert rows(alert) == {(cast.clinician.email, "email", 0, False)}


def test_writing_the_rows_takes_two_queries_whatever_the_team(fcm, cast, patient, phones, django_assert_num_queries):
    for _ in range(5):
        care_team_add(patient, ClinicianFactory(clinic=patient.clinic))
    now = timezone.now()
    alert = Alert.objects.create(
        patient=patient, rule="phq9_self_harm", severity="urgent", opened_at=now, last_fired_at=now
    )
    # 1. the care team and the admins, with whether each has an active phone; 2. one INSERT.
    with django_assert_num_queries(2):
        written = notifications.alert_notifications_create(alert=alert, now=now)
    assert len(written) == AlertNotification.objects.filter(alert=alert).count() == 6 * 4 + 2 * 3 + 4
    # Called again (a retried hook): nothing added, nothing raised.
    notifications.alert_notifications_create(alert=alert, now=now)
    assert AlertNotification.objects.filter(alert=alert).count() == len(written)


# --- The kick, after commit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "queue"), [(AlertRule.PHQ9_SELF_HARM, "alerts_urgent"), (AlertRule.USE_REPORTED, "default")]
)
def test_round_zero_is_published_after_commit_urgent_ones_on_their_own_queue(
    fcm, cast, patient, phones, monkeypatch, django_capture_on_commit_callbacks, rule, queue
):
    calls = []
    monkeypatch.setattr(queueing, "publish", lambda task, *args, queue=None: calls.append((task, args, queue)) or True)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alert = open_alert(patient, rule)
    assert calls == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()

    round_zero = {str(pk) for pk in AlertNotification.objects.filter(alert=alert, round=0).values_list("pk", flat=True)}
    [(task, (ids,), published_queue)] = calls
    assert (task, published_queue) == (tasks.send_alert_notifications, queue)
    assert set(ids) == round_zero and len(ids) == 2


def test_a_rolled_back_alert_leaves_no_rows_and_publishes_nothing(
    fcm, patient, phones, monkeypatch, django_capture_on_commit_callbacks
):
    calls = []
    monkeypatch.setattr(queueing, "publish", lambda *args, **kwargs: calls.append(args) or True)

    def entry_write_failing_after_the_alert() -> None:
        with transaction.atomic():
            open_alert(patient)
            raise RuntimeError("the entry write failed after the alert fired")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        entry_write_failing_after_the_alert()
    assert not AlertNotification.objects.exists()
    assert calls == []


# --- What the messages say ----------------------------------------------------------------------


def test_no_subject_body_or_push_names_the_patient_the_rule_or_the_severity(fcm, smtp, cast, patient, phones, settings):
    alerts = [open_alert(patient, rule) for rule in AlertRule]
    assert beat(timezone.now()) == ["sent"] * 2 * len(alerts)  # round 0: the carer's email and push of each

    names = f"{PATIENT_NAME} {patient.user.display_name}".lower().split()
    rules = {part for rule in AlertRule for part in rule.value.split("_")}  # phq9, self, harm, use, craving, …
    forbidden = {*names, *rules, *AlertSeverity.values, "severity", "suicide", "suicidal", "selfharm"}

    def assert_clean(text: str) -> None:
        assert not set(re.findall(r"[a-z0-9]+", text.lower())) & forbidden, text
        assert_neutral(text)  # the prompts' list too: substances, instruments, conditions, "clinic"

    assert len(smtp.messages) == len(alerts)
    for alert in alerts:
        [mail] = [m for m in smtp.messages if f"?alert={alert.pk}" in m.text]
        assert mail.rcpt_tos == [cast.clinician.email]
        assert mail.message["From"] == settings.DEFAULT_FROM_EMAIL
        assert mail.subject == "Interlude: a patient needs your attention"
        assert_clean(mail.subject)
        assert_clean(mail.text)
        assert f"{settings.PUBLIC_BASE_URL}/dashboard/alerts/?alert={alert.pk}" in mail.text

    assert len(fcm.accepted) == len(alerts)
    for push in fcm.accepted:
        message = push.message
        assert message["token"] == "token-carer-phone"
        assert message["notification"] == {"title": "Interlude", "body": "A patient needs your attention"}
        assert_clean(message["notification"]["title"] + " " + message["notification"]["body"])
        alert_id = message["data"]["alert_id"]
        assert message["data"] == {"kind": "alert", "alert_id": alert_id, "round": "0"}
        key = f"alert-{alert_id}-0"
        assert message["android"] == {"collapse_key": key, "notification": {"tag": key}}
        assert message["apns"] == {"headers": {"apns-collapse-id": key}}
    assert {p.message["data"]["alert_id"] for p in fcm.accepted} == {str(a.pk) for a in alerts}


# --- Rounds, escalation, acknowledgement --------------------------------------------------------


def test_an_unacknowledged_urgent_alert_goes_out_every_15_minutes_and_reaches_the_admins_at_15(
    fcm, smtp, cast, patient, phones
):
    alert = open_alert(patient)
    start = opened_at(alert)

    assert beat(start) == ["sent", "sent"]  # the carer: email and push
    assert beat(start + timedelta(minutes=14)) == []
    for n in (1, 2, 3):
        assert sorted(beat(start + n * MINUTES_15)) == ["sent"] * 4  # the carer and the admin, both ways
    assert beat(start + timedelta(hours=2)) == []

    assert set(statuses(alert).values()) == {"sent"}
    assert len(smtp.messages) == 4 + 3
    admin_mails = [m for m in smtp.messages if m.rcpt_tos == [cast.admin.email]]
    assert len(admin_mails) == 3
    assert all("administrator" in m.text for m in admin_mails)
    keys = sorted(p.message["android"]["collapse_key"] for p in fcm.accepted)
    assert keys == sorted([f"alert-{alert.pk}-{n}" for n in range(4)] + [f"alert-{alert.pk}-{n}" for n in (1, 2, 3)])


def test_an_escalation_email_links_the_admin_to_what_they_can_open_and_act_on(fcm, smtp, cast, patient, phones):
    """A clinic admin reads no journal (SPEC §1): the alert inbox would show them nothing. Their
    email says so and links to the patient's care team in the admin, which opens for them."""
    alert = open_alert(patient)
    beat(opened_at(alert))
    beat(opened_at(alert) + MINUTES_15)
    [mail] = [m for m in smtp.messages if m.rcpt_tos == [cast.admin.email]]
    link = f"{settings.PUBLIC_BASE_URL}/admin/accounts/patient/{patient.pk}/change/"
    assert link in mail.text and "/dashboard/alerts/" not in mail.text
    assert "cannot open it yourself" in mail.text
    assert_neutral(mail.text)
    admin = Client()
    admin.force_login(cast.admin)
    assert admin.get(link.removeprefix(settings.PUBLIC_BASE_URL)).status_code == 200
    # The care team's own email still goes to the alert, which opens for them.
    carer_mail = next(m for m in smtp.messages if m.rcpt_tos == [cast.clinician.email])
    assert f"/dashboard/alerts/?alert={alert.pk}" in carer_mail.text


def test_acknowledged_before_round_one_the_later_rounds_are_cancelled_and_nothing_more_is_sent(
    fcm, smtp, cast, patient, phones
):
    alert = open_alert(patient)
    start = opened_at(alert)
    assert beat(start) == ["sent", "sent"]

    acknowledge(alert, by=cast.clinician)
    for n in (1, 2, 3):
        assert beat(start + n * MINUTES_15) == []

    later = {key: status for key, status in statuses(alert).items() if key[2] > 0}
    assert len(later) == 2 * 3 + 2 * 3 and set(later.values()) == {"cancelled"}  # the admin's too
    assert len(smtp.messages) == 1
    assert len(fcm.received) == 1


@pytest.mark.parametrize("status", ["acknowledged", "resolved"])
def test_round_zero_of_a_non_urgent_alert_acknowledged_before_it_went_out_is_cancelled(
    fcm, smtp, cast, patient, phones, status
):
    alert = open_alert(patient, AlertRule.CRAVING_HIGH)
    now = timezone.now()
    step = "resolved" if status == "resolved" else "acknowledged"
    Alert.objects.filter(pk=alert.pk).update(status=status, **{f"{step}_at": now, f"{step}_by": cast.clinician})

    # The kick's task ran after the acknowledgement: the send itself sees it.
    ids = AlertNotification.objects.filter(alert=alert).values_list("pk", flat=True)
    outcomes = [notifications.alert_notification_deliver(notification_id=pk, owner=f"k{pk}", now=now) for pk in ids]
    assert outcomes == ["cancelled", "cancelled"]
    assert set(statuses(alert).values()) == {"cancelled"}
    assert smtp.messages == [] and fcm.received == []


def test_the_sweep_cancels_what_an_acknowledgement_left_without_sending_it(fcm, smtp, cast, patient, phones):
    alert = open_alert(patient)
    acknowledge(alert, by=cast.clinician)
    assert sweep(opened_at(alert)) == []
    assert set(statuses(alert).values()) == {"cancelled"}  # every round at once, due or not
    assert smtp.messages == [] and fcm.received == []


def test_a_clinician_taken_off_the_care_team_is_not_notified(fcm, smtp, cast, patient, phones):
    open_alert(patient, AlertRule.USE_REPORTED)
    patient.care_team_memberships.filter(clinician=cast.clinician).delete()
    assert beat(timezone.now()) == ["cancelled", "cancelled"]
    assert set(AlertNotification.objects.values_list("last_error", flat=True)) == {"recipient_gone"}
    assert smtp.messages == [] and fcm.received == []


# --- Once --------------------------------------------------------------------------------------


def test_a_duplicated_send_task_sends_once(fcm, smtp, cast, patient, phones):
    alert = open_alert(patient, AlertRule.USE_REPORTED)
    ids = [str(pk) for pk in AlertNotification.objects.filter(alert=alert).values_list("pk", flat=True)]

    tasks.send_alert_notifications(ids + ids)  # the kick, its ids twice
    tasks.send_alert_notifications(ids)  # and the message redelivered
    assert beat(timezone.now() + timedelta(minutes=1)) == []  # the sweep finds nothing left

    assert len(smtp.messages) == 1
    assert len(fcm.received) == 1
    assert set(AlertNotification.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_a_held_notification_is_left_alone_and_a_dead_senders_lapsed_lease_is_taken_over(
    fcm, smtp, cast, patient, settings
):
    alert = open_alert(patient, AlertRule.USE_REPORTED)
    [notification] = AlertNotification.objects.filter(alert=alert)
    now = timezone.now()
    due = AlertNotification.objects.filter(pk=notification.pk)

    assert send_claim(due, owner="dying-worker", now=now)
    assert (
        notifications.alert_notification_deliver(notification_id=notification.pk, owner="b", now=now) == "not_claimed"
    )
    assert beat(now + timedelta(seconds=1)) == []

    later = now + timedelta(seconds=settings.PROMPT_SEND_LEASE_SECONDS + 1)
    assert beat(later) == ["sent"]
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)
    assert len(smtp.messages) == 1


# --- Failures and retries -----------------------------------------------------------------------


def test_a_mail_server_that_is_down_is_retried_with_backoff_then_given_up(cast, patient, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", spare_port(), 2
    alert = open_alert(patient, AlertRule.USE_REPORTED)
    [notification] = AlertNotification.objects.filter(alert=alert)

    at, outcomes = notification.due_at, []
    while notification.status == "scheduled":
        outcomes += beat(at)
        notification.refresh_from_db()
        assert notification.next_attempt_at > at or notification.status == "failed"
        at = notification.next_attempt_at
    assert outcomes == ["retry"] * (notifications.MAX_ATTEMPTS - 1) + ["failed"]
    assert notification.last_error.startswith("email_")
    assert notification.attempts == notifications.MAX_ATTEMPTS


def test_fcm_429_waits_for_retry_after_and_5xx_backs_off(fcm, cast, patient, phones, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    fcm.queue(Reply.quota(retry_after=120), Reply.unavailable(503))
    alert = open_alert(patient, AlertRule.USE_REPORTED)
    push = AlertNotification.objects.get(alert=alert, channel="push")
    start = push.due_at

    assert sorted(beat(start)) == ["retry", "sent"]  # the push waits; the email went
    push.refresh_from_db()
    assert (push.status, push.last_error) == ("scheduled", "fcm_429")
    assert push.next_attempt_at >= start + timedelta(seconds=120)

    assert beat(push.next_attempt_at) == ["retry"]
    push.refresh_from_db()
    assert push.last_error == "fcm_503"
    assert beat(push.next_attempt_at) == ["sent"]
    push.refresh_from_db()
    assert (push.status, push.attempts) == ("sent", 3)
    assert len(fcm.accepted) == 1


def test_an_urgent_rounds_retries_stop_when_the_next_round_is_due(fcm, cast, patient, phones, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    fcm.reply_for("token-carer-phone", Reply.quota(retry_after=20 * 60))  # longer than a round
    alert = open_alert(patient)
    start = opened_at(alert)

    assert sorted(beat(start)) == ["failed", "sent"]
    push = AlertNotification.objects.get(alert=alert, channel="push", round=0)
    assert (push.status, push.last_error) == ("failed", "fcm_429")  # round 1 carries the message


def test_an_unregistered_token_is_deactivated_and_the_email_still_goes(fcm, smtp, cast, patient, phones):
    fcm.reply_for("token-carer-phone", Reply.unregistered())
    alert = open_alert(patient, AlertRule.USE_REPORTED)

    assert sorted(beat(timezone.now())) == ["failed", "sent"]

    device = Device.objects.get(token="token-carer-phone")
    assert (device.active, device.deactivated_reason) == (False, "unregistered")
    push = AlertNotification.objects.get(alert=alert, channel="push")
    assert (push.status, push.last_error) == ("failed", "no_device")
    assert len(smtp.messages) == 1


# --- The sweeper --------------------------------------------------------------------------------


def test_the_sweep_task_publishes_urgent_notifications_first_on_their_own_queue(
    fcm, cast, patient, phones, monkeypatch
):
    low = open_alert(patient, AlertRule.DISENGAGED)
    urgent = open_alert(patient, AlertRule.PHQ9_SELF_HARM)
    calls = []
    monkeypatch.setattr(tasks, "publish", lambda task, *args, queue=None: calls.append((task, args, queue)) or True)

    assert tasks.sweep_due_alert_notifications()["published"] == 4

    def round_zero(alert):
        return {str(pk) for pk in AlertNotification.objects.filter(alert=alert, round=0).values_list("pk", flat=True)}

    [(first, (urgent_ids,), urgent_queue), (second, (low_ids,), low_queue)] = calls
    assert first is second is tasks.send_alert_notifications
    assert (set(urgent_ids), urgent_queue) == (round_zero(urgent), "alerts_urgent")
    assert (set(low_ids), low_queue) == (round_zero(low), "default")
    assert tasks.sweep_due_alert_notifications()["published"] == 0  # held by their publish lease


def test_the_sweep_with_the_broker_down_publishes_nothing_and_leaves_the_rows_for_the_next(cast, patient):
    alert = open_alert(patient)
    with celery_app_broker(f"redis://127.0.0.1:{spare_port()}/0"):  # nothing listens there
        result = tasks.sweep_due_alert_notifications()
    assert (result["claimed"], result["published"]) == (1, 0)
    assert not AlertNotification.objects.filter(lease_until__isnull=False).exists()
    assert [pk for pk, _ in sweep(timezone.now())] == [
        str(pk) for pk in AlertNotification.objects.filter(alert=alert, round=0).values_list("pk", flat=True)
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN of PostgreSQL's planner")
def test_the_sweep_query_reads_the_partial_index_and_locks_only_notifications(cast, patient):
    open_alert(patient)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # see whether the index *can* serve it
    query = notifications.alert_notifications_claimable(now=timezone.now(), limit=100, urgent=True)
    plan = query.explain()
    assert "alert_notification_due" in plan, plan
    assert "LockRows" in plan
    assert 'FOR UPDATE OF "reminders_alertnotification" SKIP LOCKED' in str(query.query)


# --- Clinicians' phones -------------------------------------------------------------------------


def test_a_clinician_who_registers_a_phone_gets_the_push(fcm, smtp, cast, patient, clients):
    response = clients.clinician.post(
        "/api/v1/devices/", {"platform": "ios", "token": "clinician-new-phone"}, format="json"
    )
    assert response.status_code == 201, response.content

    open_alert(patient, AlertRule.USE_REPORTED)
    assert sorted(beat(timezone.now())) == ["sent", "sent"]
    assert [p.token for p in fcm.accepted] == ["clinician-new-phone"]
