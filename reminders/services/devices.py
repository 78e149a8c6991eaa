"""Phones that receive pushes (SPEC §7): registered by the app, dropped by the app or by FCM."""

import uuid

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import User
from reminders.models import Device


@transaction.atomic
def device_register(*, user: User, platform: str, token: str) -> tuple[Device, bool]:
    """Upserts by token; returns the device and whether it is new to this user.

    A token names one app install on one phone. When it arrives from another user (a shared or
    handed-on phone, a new sign-in) the row moves to this user and pushes for the previous user
    stop, so they can never land on someone else's lock screen. The moved row gets a fresh
    `created_at`: nothing in the answer tells this user when the previous one registered.
    """
    # Locked, so two sign-ins registering the same token at once cannot both think they won;
    # get_or_create turns a racing insert's IntegrityError into a second read.
    device, created = Device.objects.select_for_update().get_or_create(
        token=token, defaults={"user": user, "platform": platform}
    )
    if created:
        return device, True
    new_to_user = device.user_id != user.pk
    device.user = user
    device.platform = platform
    device.active = True
    device.deactivated_reason = ""
    fields = ["user", "platform", "active", "deactivated_reason", "updated_at"]
    if new_to_user:
        device.created_at = timezone.now()
        fields.append("created_at")
    device.save(update_fields=fields)
    return device, new_to_user


def device_delete(*, user: User, device_id: uuid.UUID) -> None:
    """Another user's device is a 404, the same as one that does not exist."""
    get_object_or_404(Device, pk=device_id, user=user).delete()


def device_deactivate(*, device_id: uuid.UUID, token: str, reason: str) -> bool:
    """FCM called this token unregistered or invalid. One conditional UPDATE: two deliveries that
    both hear it deactivate the row once, and a row that meanwhile got another token is left alone."""
    changed = Device.objects.filter(pk=device_id, token=token, active=True).update(
        active=False, deactivated_reason=reason[:32], updated_at=timezone.now()
    )
    return changed == 1
