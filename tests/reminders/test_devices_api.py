"""Devices API (SPEC §7): POST upserts by token, DELETE removes your own only."""

import uuid

import pytest

from reminders.models import Device

pytestmark = pytest.mark.django_db

TOKEN = "fcm-token:APA91b_example-123"


def register(client, token=TOKEN, platform="android"):
    return client.post("/api/v1/devices/", {"platform": platform, "token": token}, format="json")


def test_registering_a_new_token_creates_an_active_device(cast, clients):
    response = register(clients.patient)

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "platform", "active", "created_at"}
    assert (body["platform"], body["active"]) == ("android", True)
    assert body["created_at"].endswith("Z")
    device = Device.objects.get(pk=body["id"])
    assert (device.user, device.token) == (cast.patient.user, TOKEN)


def test_registering_the_same_token_again_updates_and_reactivates_it(cast, clients):
    first = register(clients.patient).json()
    Device.objects.filter(pk=first["id"]).update(active=False, deactivated_reason="unregistered")

    response = register(clients.patient, platform="ios")

    assert response.status_code == 200
    assert response.json() == {**first, "platform": "ios", "active": True}
    device = Device.objects.get()
    assert (device.active, device.deactivated_reason, device.platform) == (True, "", "ios")


def test_a_token_registered_by_another_user_moves_to_the_new_one(cast, clients):
    old = register(clients.other_patient).json()

    response = register(clients.patient)

    assert response.status_code == 201  # new to this user
    body = response.json()
    assert body["created_at"] >= old["created_at"]
    device = Device.objects.get()  # still one row per token
    assert device.user == cast.patient.user and device.active
    # The previous user no longer owns it: their DELETE finds nothing.
    assert clients.other_patient.delete(f"/api/v1/devices/{device.id}/").status_code == 404


def test_clinicians_register_devices_too(cast, clients):
    assert register(clients.clinician, token="clinician-phone").status_code == 201
    assert Device.objects.get().user == cast.clinician


@pytest.mark.parametrize(
    "body",
    [
        {"platform": "windows", "token": TOKEN},
        {"platform": "android"},
        {"platform": "android", "token": ""},
        {"platform": "android", "token": "x" * 513},
        {"platform": "android", "token": "has spaces in it"},
        {"platform": "android", "token": 12345},
    ],
)
def test_invalid_registrations_are_400(clients, body):
    response = clients.patient.post("/api/v1/devices/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not Device.objects.exists()


def test_deleting_your_own_device(clients):
    device_id = register(clients.patient).json()["id"]
    assert clients.patient.delete(f"/api/v1/devices/{device_id}/").status_code == 204
    assert not Device.objects.exists()
    assert clients.patient.delete(f"/api/v1/devices/{device_id}/").status_code == 404


def test_another_users_device_is_a_404_and_stays(clients):
    device_id = register(clients.patient).json()["id"]
    for client in (clients.other_patient, clients.clinician, clients.admin):
        response = client.delete(f"/api/v1/devices/{device_id}/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert clients.patient.delete(f"/api/v1/devices/{uuid.uuid4()}/").status_code == 404
    assert Device.objects.filter(pk=device_id, active=True).exists()


def test_anonymous_gets_401(clients):
    device_id = register(clients.patient).json()["id"]
    assert (
        clients.anonymous.post("/api/v1/devices/", {"platform": "ios", "token": "t"}, format="json").status_code == 401
    )
    assert clients.anonymous.delete(f"/api/v1/devices/{device_id}/").status_code == 401
    assert Device.objects.count() == 1


def test_registering_makes_a_bounded_number_of_queries(clients, django_assert_max_num_queries):
    # Auth (sign-in lookup, user), the locked read, the insert or update, savepoint bookkeeping.
    with django_assert_max_num_queries(10):
        assert register(clients.patient).status_code == 201
    with django_assert_max_num_queries(10):
        assert register(clients.patient).status_code == 200
