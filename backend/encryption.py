"""Free text about a patient, encrypted at rest (entry, session and alert notes): one field type.

`FIELD_ENCRYPTION_KEYS` lists Fernet keys, newest first: the first encrypts, all decrypt, so a key
is rotated by putting a new one in front and running `manage.py rotate_encryption_keys`.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    if not keys:
        raise ImproperlyConfigured("Set FIELD_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first).")
    try:
        fernets = [Fernet(key.encode()) for key in keys]
    except ValueError:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key.") from None
    return MultiFernet(fernets), fernets[0]


def _keys() -> tuple[str, ...]:
    return tuple(settings.FIELD_ENCRYPTION_KEYS)


def encrypt(plaintext: str) -> str:
    return PREFIX + _fernets(_keys())[0].encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise ValueError("not an encrypted value")
    try:
        return _fernets(_keys())[0].decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        # Never echo the value: it is a patient's note.
        raise ValueError("an encrypted value could not be decrypted with any FIELD_ENCRYPTION_KEYS key") from None


def is_under_newest_key(stored: str) -> bool:
    try:
        _fernets(_keys())[1].decrypt(stored[len(PREFIX) :].encode())
        return True
    except InvalidToken:
        return False


def rotate(stored: str) -> str:
    return PREFIX + _fernets(_keys())[0].rotate(stored[len(PREFIX) :].encode()).decode()


class EncryptedTextField(models.TextField):
    """A TextField whose column only ever holds Fernet tokens; Python sees the plaintext.

    The empty string stays empty (no note), so "has a note" remains a cheap SQL test.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
