"""Re-encrypts every EncryptedTextField value under the newest FIELD_ENCRYPTION_KEYS key.

Rotating a key: put the new key first in FIELD_ENCRYPTION_KEYS (the old ones stay after it, so
everything still decrypts), deploy, run this command, then drop the old keys.

Resumable by construction: a value already under the newest key is skipped, so a run that stops
halfway is finished by running it again. Values are rewritten with plain UPDATEs, so a rotation
bumps no `updated_at`, version or change sequence: the content did not change. Nothing here ever
prints a value, encrypted or not.
"""

from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connections, models, router, transaction
from tqdm import tqdm

from backend.encryption import PREFIX, EncryptedTextField, is_under_newest_key, rotate

_UNREADABLE_SHOWN = 10


@dataclass
class Tally:
    rotated: int = 0
    current: int = 0
    unreadable: int = 0
    unreadable_pks: list = field(default_factory=list)

    def unreadable_add(self, pk) -> None:
        self.unreadable += 1
        if len(self.unreadable_pks) < _UNREADABLE_SHOWN:
            self.unreadable_pks.append(pk)


class _ProgressStream:
    """tqdm redraws its line with carriage returns; Django's OutputWrapper would end every write
    with a newline (and colour it as an error on a terminal)."""

    def __init__(self, wrapper):
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, style_func=lambda plain: plain, ending="")

    def flush(self) -> None:
        self._wrapper.flush()


def encrypted_models() -> list[tuple[type[models.Model], list[EncryptedTextField]]]:
    """Every concrete model with an encrypted column, with those fields (its own, not a parent's)."""
    found = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        fields = [f for f in meta.local_concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field under the newest FIELD_ENCRYPTION_KEYS key. Safe to stop and re-run."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per read and per transaction.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar on stderr.")

    def handle(self, *args, batch_size: int, no_progress: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        unreadable = 0
        for model, fields in encrypted_models():
            tally = self._rotate_model(model, fields, batch_size=batch_size, progress=not no_progress)
            columns = ", ".join(f.name for f in fields)
            self.stdout.write(
                f"{model._meta.label} ({columns}): {tally.rotated} re-encrypted, "
                f"{tally.current} already under the newest key, {tally.unreadable} unreadable"
            )
            if tally.unreadable:
                pks = ", ".join(str(pk) for pk in tally.unreadable_pks)
                self.stderr.write(f"{model._meta.label}: rows that no key decrypts include pk {pks}")
            unreadable += tally.unreadable
        if unreadable:
            raise CommandError(
                f"{unreadable} values could not be decrypted with any FIELD_ENCRYPTION_KEYS key and were left "
                "as they are. Add the key they were written with and run the command again."
            )

    def _rotate_model(self, model, fields, *, batch_size: int, progress: bool) -> Tally:
        alias = router.db_for_write(model)
        connection = connections[alias]
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        pk = quote(model._meta.pk.column)
        columns = [quote(f.column) for f in fields]
        # Identifiers come from model metadata and are quoted; every value is a parameter.
        has_value = " OR ".join(f"{column} <> ''" for column in columns)
        count_sql = f"SELECT COUNT(*) FROM {table} WHERE ({has_value})"  # noqa: S608
        select = f"SELECT {pk}, {', '.join(columns)} FROM {table} WHERE ({has_value})"  # noqa: S608
        first_sql = f"{select} ORDER BY {pk} LIMIT %s"
        next_sql = f"{select} AND {pk} > %s ORDER BY {pk} LIMIT %s"
        # Only where the column still holds what was read: a value the app rewrote meanwhile is
        # already under the newest key, and must not be overwritten with the stale note.
        updates = {
            column: f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s"  # noqa: S608
            for column in columns
        }

        tally = Tally()
        with connection.cursor() as cursor:
            cursor.execute(count_sql)
            (total,) = cursor.fetchone()
        bar = tqdm(
            total=total,
            desc=model._meta.label,
            unit="row",
            file=_ProgressStream(self.stderr),
            disable=not progress,
        )
        last_pk = None
        with bar:
            while True:
                with connection.cursor() as cursor:
                    if last_pk is None:
                        cursor.execute(first_sql, [batch_size])
                    else:
                        cursor.execute(next_sql, [last_pk, batch_size])
                    rows = cursor.fetchall()
                if not rows:
                    break
                changes = {column: [] for column in columns}
                for row_pk, *values in rows:
                    for column, stored in zip(columns, values, strict=True):
                        new = self._rotated(stored, row_pk, tally)
                        if new is not None:
                            changes[column].append((new, row_pk, stored))
                with transaction.atomic(using=alias), connection.cursor() as cursor:
                    for column, params in changes.items():
                        if params:
                            cursor.executemany(updates[column], params)
                bar.update(len(rows))
                last_pk = rows[-1][0]
        return tally

    @staticmethod
    def _rotated(stored: str | None, pk, tally: Tally) -> str | None:
        """The value under the newest key, or None when there is nothing to write."""
        if not stored:
            return None
        if not stored.startswith(PREFIX):
            tally.unreadable_add(pk)
            return None
        if is_under_newest_key(stored):
            tally.current += 1
            return None
        try:
            new = rotate(stored)
        except InvalidToken:
            tally.unreadable_add(pk)
            return None
        tally.rotated += 1
        return new
