"""Fixes from audit B (SPEC §7): quiet hours hold at send time too, a token FCM says belongs to
another sender is dropped like an unregistered one, and a PATCH with half a window is a 400.

FCM and SMTP are the loopback servers; the test plays beat and worker, as in test_delivery.py.
"""

import logging
from datetime import UTC, date, datetime
from datetime import time as wall_time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from reminders import planning
from reminders.models import WEEKDAYS, Device, Prompt, Schedule
from reminders.services import delivery
from reminders.services.schedules import schedule_create
from tests.reminders.test_delivery import beat, make_prompt
from tests.support.fcm_server import Reply

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
# Noon in New York on a summer day: schedules created then plan from that evening on.
PLANNED_AT = datetime(2027, 6, 10, 16, 0, tzinfo=UTC)


def local(moment: datetime | None) -> datetime | None:
    return moment.astimezone(NEW_YORK) if moment else None


@pytest.fixture
def night_owl(cast):
    """A patient in New York with quiet hours 23:00–07:00 and one phone."""
    patient = cast.patient
    patient.timezone = "America/New_York"
    patient.quiet_hours_start, patient.quiet_hours_end = wall_time(23, 0), wall_time(7, 0)
    patient.save()
    Device.objects.create(user=patient.user, platform="android", token="token-night-owl")
    return patient


def evening_prompt(patient, *, at: wall_time, expires_after_minutes: int) -> Prompt:
    with time_machine.travel(PLANNED_AT, tick=False):
        schedule_create(
            patient=patient,
            created_by=None,
            data={"kind": "check_in", "time": at, "expires_after_minutes": expires_after_minutes},
        )
    prompt = Prompt.objects.get(patient=patient, local_date=date(2027, 6, 10))
    assert prompt.status == "scheduled"  # planned outside quiet hours
    return prompt


# --- Quiet hours hold at send time -------------------------------------------------------------------


def test_a_prompt_late_after_an_outage_waits_for_the_end_of_quiet_hours(fcm, night_owl):
    prompt = evening_prompt(night_owl, at=wall_time(21, 0), expires_after_minutes=1440)

    # Beat and workers were down from 20:55; the first sweep afterwards runs at 03:00.
    assert beat(datetime(2027, 6, 11, 3, 0, tzinfo=NEW_YORK)) == ["quiet_hours"]
    prompt.refresh_from_db()
    assert fcm.received == []
    assert (prompt.status, prompt.sent_at, local(prompt.next_attempt_at)) == (
        "scheduled",
        None,
        datetime(2027, 6, 11, 7, 0, tzinfo=NEW_YORK),
    )
    assert beat(datetime(2027, 6, 11, 6, 59, tzinfo=NEW_YORK)) == []  # not due before they end

    assert beat(datetime(2027, 6, 11, 7, 0, tzinfo=NEW_YORK)) == ["sent"]
    prompt.refresh_from_db()
    assert (prompt.status, local(prompt.sent_at).replace(microsecond=0).time()) == ("sent", wall_time(7, 0))
    assert [received.prompt_id for received in fcm.accepted] == [str(prompt.pk)]


def test_a_prompt_that_would_expire_before_quiet_hours_end_is_skipped_for_quiet_hours(fcm, smtp, night_owl):
    prompt = evening_prompt(night_owl, at=wall_time(21, 0), expires_after_minutes=360)  # until 03:00

    assert beat(datetime(2027, 6, 10, 23, 30, tzinfo=NEW_YORK)) == ["skipped"]

    prompt.refresh_from_db()
    # As planning skips one that falls inside (SPEC §7), so compliance counts it as skipped.
    assert (prompt.status, prompt.skip_reason, prompt.sent_at, prompt.channel) == ("skipped", "quiet_hours", None, "")
    assert fcm.received == [] and smtp.messages == []  # email waits for no phone's quiet hours either
    assert beat(datetime(2027, 6, 11, 7, 0, tzinfo=NEW_YORK)) == []


def test_fcm_backoff_never_carries_a_push_into_quiet_hours(fcm, night_owl, monkeypatch):
    monkeypatch.setattr(delivery.random, "uniform", lambda low, high: high)  # the longest backoffs
    prompt = evening_prompt(night_owl, at=wall_time(22, 50), expires_after_minutes=120)
    # 503s at 22:50:00, 22:50:30, 22:51:30, 22:53:30 and 22:57:30; FCM is back for 23:05:30.
    fcm.queue(*[Reply.unavailable(503)] * 5)

    at, attempts = prompt.scheduled_for, []
    while prompt.status == "scheduled":
        assert len(attempts) < 10
        attempts += [(local(at).time(), outcome) for outcome in beat(at)]
        prompt.refresh_from_db()
        at = prompt.next_attempt_at

    *retries, (last_at, last_outcome) = attempts
    assert [outcome for _, outcome in retries] == ["retry"] * 5
    assert all(at < wall_time(23, 0) for at, _ in retries)
    assert (last_at.replace(second=0, microsecond=0), last_outcome) == (wall_time(23, 5), "skipped")  # 07:00 > 00:50
    assert (prompt.status, prompt.skip_reason, prompt.sent_at) == ("skipped", "quiet_hours", None)
    assert len(fcm.received) == 5 and fcm.accepted == []


@pytest.mark.parametrize(
    ("moment", "start", "end", "ends"),
    [
        (datetime(2027, 6, 10, 23, 30), wall_time(23, 0), wall_time(7, 0), datetime(2027, 6, 11, 7, 0)),
        (datetime(2027, 6, 11, 3, 0), wall_time(23, 0), wall_time(7, 0), datetime(2027, 6, 11, 7, 0)),
        (datetime(2027, 6, 11, 2, 0), wall_time(1, 0), wall_time(6, 0), datetime(2027, 6, 11, 6, 0)),
        (datetime(2027, 6, 11, 7, 0), wall_time(23, 0), wall_time(7, 0), None),  # [start, end)
        (datetime(2027, 6, 10, 22, 59), wall_time(23, 0), wall_time(7, 0), None),
        (datetime(2027, 6, 10, 23, 30), None, None, None),
        # Spring forward: quiet hours ending at 02:30, a time that does not exist that night, end
        # when a 02:30 prompt would fire (03:30 EDT).
        (datetime(2027, 3, 14, 1, 30), wall_time(22, 0), wall_time(2, 30), datetime(2027, 3, 14, 3, 30)),
        # Fall back (01:00–02:00 twice): quiet until 01:30 ends at the first 01:30 for the first
        # pass, and 15 minutes later, not tomorrow, for 01:15 on the second pass.
        (datetime(2026, 11, 1, 1, 15), wall_time(22, 0), wall_time(1, 30), datetime(2026, 11, 1, 1, 30)),
        (
            datetime(2026, 11, 1, 1, 15, fold=1),
            wall_time(22, 0),
            wall_time(1, 30),
            datetime(2026, 11, 1, 1, 30, fold=1),
        ),
        (datetime(2026, 11, 1, 1, 45, fold=1), wall_time(22, 0), wall_time(1, 30), None),
    ],
)
def test_quiet_hours_end_at_the_next_local_end_time(moment, start, end, ends):
    moment = moment.replace(tzinfo=NEW_YORK)
    # As UTC: an aware time inside the repeated hour never equals one of another zone (PEP 495).
    expected = ends.replace(tzinfo=NEW_YORK).astimezone(UTC) if ends else None
    assert planning.quiet_hours_end(NEW_YORK, moment, start, end) == expected


# --- A token issued to another sender -------------------------------------------------------------


@pytest.fixture
def schedule(cast):
    return Schedule.objects.create(patient=cast.patient, kind="check_in", days=list(WEEKDAYS), time=wall_time(9, 0))


def test_a_sender_id_mismatch_token_is_deactivated_and_email_takes_over(fcm, smtp, schedule, cast, caplog):
    device = Device.objects.create(user=cast.patient.user, platform="android", token="token-staging-build")
    fcm.reply_for(device.token, Reply(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"))
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    with caplog.at_level(logging.WARNING, logger="reminders.transports.fcm"):
        assert beat(now) == ["sent"]

    device.refresh_from_db()
    prompt.refresh_from_db()
    assert (device.active, device.deactivated_reason) == (False, "sender_id_mismatch")
    assert (prompt.status, prompt.channel) == ("sent", "email")
    [mail] = smtp.messages
    assert mail.rcpt_tos == [cast.patient.user.email]
    assert len(fcm.grants) == 1  # our access token was not thrown away: it was not at fault
    assert any("another sender" in record.getMessage() for record in caplog.records)


def test_a_403_without_a_token_code_is_still_our_credentials(fcm, schedule, cast):
    device = Device.objects.create(user=cast.patient.user, platform="android", token="token-pat-phone")
    fcm.queue(Reply(403, "PERMISSION_DENIED"))
    now = timezone.now()
    prompt = make_prompt(schedule, now=now)

    assert beat(now) == ["retry"]

    device.refresh_from_db()
    prompt.refresh_from_db()
    assert device.active
    assert (prompt.status, prompt.last_error) == ("scheduled", "fcm_403")


# --- Half a window ------------------------------------------------------------------------------------


def _field_codes(response) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    return body["error"]["field_codes"]


@pytest.mark.parametrize(
    ("window", "missing"),
    [({"start": "10:00"}, "end"), ({"end": "12:00"}, "start"), ({}, "start")],
)
def test_a_patch_with_half_a_window_is_a_400_and_changes_nothing(cast, clients, window, missing):
    created = clients.patient.post(
        "/api/v1/reminders/", {"kind": "check_in", "window": {"start": "09:00", "end": "11:00"}}, format="json"
    ).json()
    own = f"/api/v1/reminders/{created['id']}/"
    care = f"/api/v1/patients/{cast.patient.pk}/reminders/{created['id']}/"

    def missing_codes(response) -> list[str]:
        return _field_codes(response).get(f"window.{missing}", [])

    assert "required" in missing_codes(clients.patient.patch(own, {"window": window}, format="json"))
    assert "required" in missing_codes(clients.clinician.patch(care, {"window": window}, format="json"))
    # The same answer as a POST with that window: a window is given whole.
    assert "required" in missing_codes(
        clients.patient.post("/api/v1/reminders/", {"kind": "check_in", "window": window}, format="json")
    )

    assert clients.patient.get(own).json() == created
    response = clients.patient.patch(own, {"window": {"start": "10:00", "end": "12:00"}}, format="json")
    assert (response.status_code, response.json()["window"]) == (200, {"start": "10:00", "end": "12:00"})
