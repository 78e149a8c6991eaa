"""backend.db.use_compiled_timestamptz_loader: Django's PostgreSQL connections read timestamptz
through psycopg's compiled loader, with exactly the values Django's own loader gives."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import adapters
from psycopg.pq import Format

pytestmark = pytest.mark.django_db

TIMESTAMPTZ = adapters.types["timestamptz"].oid
INSTANTS = [
    datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 11, 29, 5, 49, 16, 123456, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, tzinfo=UTC) + timedelta(days=1),
    datetime(9999, 12, 30, 23, 59, 59, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
]


def _select(instants):
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::timestamptz[])", [instants])
        return [row[0] for row in cursor.fetchall()]


def test_the_connection_parses_timestamptz_with_the_compiled_loader():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ, Format.TEXT)
    assert not issubclass(loader, BaseTzLoader)  # Django's pure-Python one is replaced
    assert loader.timezone == connection.timezone  # which Django's create_cursor compares
    compiled = adapters.get_loader(TIMESTAMPTZ, Format.TEXT)
    assert compiled.__module__.startswith("psycopg_binary")  # requirements install psycopg[binary]
    assert isinstance(loader(TIMESTAMPTZ, connection.connection)._parse.__self__, compiled)


def test_values_are_the_ones_djangos_loader_gives():
    values = _select(INSTANTS)
    assert values == INSTANTS
    assert all(value.tzinfo is connection.timezone for value in values)
    # Django's own loader on the same cursor, side by side: same value, same tzinfo object.
    with connection.cursor() as cursor:
        djangos = type("DjangoTzLoader", (BaseTzLoader,), {"timezone": connection.timezone})
        cursor.cursor.adapters.register_loader(TIMESTAMPTZ, djangos)
        cursor.execute("SELECT unnest(%s::timestamptz[])", [INSTANTS])
        djangos_values = [row[0] for row in cursor.fetchall()]
    assert [(v, v.tzinfo) for v in djangos_values] == [(v, v.tzinfo) for v in values]
