"""The patient's phone and a clinician update the one patient row at once (SPEC §4: the patient
changes their time zone, the care team their status). Neither may write back what its request
loaded over what the other committed meanwhile. Real PostgreSQL transactions in threads; events
fix the interleaving: one request has loaded the patient and is about to update it while the
other's update commits."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import time

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import PatientStatus
from reminders.models import WEEKDAYS, Prompt, Schedule
from reminders.services.schedules import prompts_replan
from tests.conftest import client_for
from tests.support.db_threads import in_thread

pytestmark = pytest.mark.django_db(transaction=True)


def hold_before_update(monkeypatch, role: threading.local, name: str):
    """The request run by `name` stops after loading the patient, just before `patient_update`,
    until the other request is done. Returns (loaded, other_done)."""
    loaded, other_done = threading.Event(), threading.Event()
    original = services.patient_update

    def held(**kwargs):
        if getattr(role, "name", None) == name:
            loaded.set()
            assert other_done.wait(timeout=10)
        return original(**kwargs)

    monkeypatch.setattr(services, "patient_update", held)
    return loaded, other_done


def future_prompts(patient) -> int:
    return Prompt.objects.filter(patient=patient, scheduled_for__gt=timezone.now()).count()


def test_a_time_zone_change_does_not_undo_a_concurrent_pause(cast, monkeypatch):
    """SPEC §1: paused patients get no prompts and fire no alerts. The clinician pauses the patient
    while the phone's time-zone change is in flight: both changes stick, and the phone's re-plan
    sees the pause, so no prompt is planned again."""
    patient = cast.patient
    Schedule.objects.create(patient=patient, kind="check_in", days=list(WEEKDAYS), time=time(9, 0))
    prompts_replan(patient=patient)
    assert future_prompts(patient) > 0
    phone, clinician = client_for(patient.user), client_for(cast.clinician)
    role = threading.local()
    loaded, paused = hold_before_update(monkeypatch, role, "phone")

    @in_thread
    def change_time_zone():
        role.name = "phone"
        return phone.patch("/api/v1/me/", {"timezone": "Europe/Berlin"}, format="json")

    @in_thread
    def pause():
        assert loaded.wait(timeout=10)
        try:
            return clinician.patch(f"/api/v1/patients/{patient.pk}/", {"status": "paused"}, format="json")
        finally:
            paused.set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        zone_change, pausing = pool.submit(change_time_zone), pool.submit(pause)
        assert (zone_change.result(timeout=30).status_code, pausing.result(timeout=30).status_code) == (200, 200)
    assert zone_change.result().json()["timezone"] == "Europe/Berlin"
    patient.refresh_from_db()
    assert (patient.timezone, patient.status) == ("Europe/Berlin", PatientStatus.PAUSED)
    assert future_prompts(patient) == 0


def test_a_clinicians_stale_rename_does_not_undo_a_time_zone_change(cast, monkeypatch):
    """The clinician's request loaded the patient before the phone moved them to Berlin; its rename
    must not put the old time zone back (the prompts were re-planned in Berlin's), and its answer
    shows the row as it is now."""
    patient = cast.patient
    assert patient.timezone != "Europe/Berlin"
    phone, clinician = client_for(patient.user), client_for(cast.clinician)
    role = threading.local()
    loaded, zone_changed = hold_before_update(monkeypatch, role, "clinician")

    @in_thread
    def rename():
        role.name = "clinician"
        return clinician.patch(f"/api/v1/patients/{patient.pk}/", {"display_name": "Pat B."}, format="json")

    @in_thread
    def change_time_zone():
        assert loaded.wait(timeout=10)
        try:
            return phone.patch("/api/v1/me/", {"timezone": "Europe/Berlin"}, format="json")
        finally:
            zone_changed.set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        renaming, zone_change = pool.submit(rename), pool.submit(change_time_zone)
        assert (renaming.result(timeout=30).status_code, zone_change.result(timeout=30).status_code) == (200, 200)
    body = renaming.result().json()
    assert (body["display_name"], body["timezone"]) == ("Pat B.", "Europe/Berlin")
    patient.refresh_from_db()
    assert (patient.display_name, patient.timezone) == ("Pat B.", "Europe/Berlin")
