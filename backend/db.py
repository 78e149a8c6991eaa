"""Small database helpers the ORM does not offer directly."""

from collections.abc import Sequence
from functools import lru_cache

from django.db import connections, router
from django.db.models import Model
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery

_insert_sql: dict[tuple, str] = {}


def insert_rows_statement(objs: Sequence[Model], on_conflict: OnConflict | None = None) -> tuple[str, list]:
    """`INSERT …` of instances of one model: Django's own statement (InsertQuery), with values from
    each field's pre_save and get_db_prep_save exactly as in Model.save() (encryption too). Without
    `on_conflict` the caller may append its own ON CONFLICT clause.

    One row's text is the same for every row, so it is compiled once per model, database and
    conflict handling (the hot paths write one row); several rows are compiled each time, since
    Django may lay their values out as arrays (UNNEST on PostgreSQL)."""
    model = type(objs[0])
    using = router.db_for_write(model, instance=objs[0])
    fields = model._meta.local_concrete_fields
    key = (model, using, on_conflict)
    if len(objs) > 1 or key not in _insert_sql:
        query = InsertQuery(model, on_conflict=on_conflict)
        query.insert_values(fields, objs)
        [(sql, params)] = query.get_compiler(using=using).as_sql()
        if len(objs) > 1:
            return sql, list(params)
        _insert_sql[key] = sql
    connection = connections[using]
    return _insert_sql[key], [field.get_db_prep_save(field.pre_save(objs[0], True), connection) for field in fields]


def insert_statement(obj: Model) -> tuple[str, list]:
    """`INSERT … ON CONFLICT DO NOTHING` for one instance."""
    return insert_rows_statement([obj], OnConflict.IGNORE)


def mark_saved(obj: Model) -> None:
    obj._state.adding = False
    obj._state.db = router.db_for_write(type(obj), instance=obj)


def insert_unless_exists(obj: Model) -> bool:
    """Inserts one instance unless its primary key exists; True when this call inserted the row.

    One statement where "does it exist? then insert" takes two, for write paths that are idempotent
    by a client-made primary key. On PostgreSQL a concurrent uncommitted insert of the same key makes
    this wait for that transaction and then do nothing, so a race ends in a clean False, not an
    IntegrityError.
    """
    sql, params = insert_statement(obj)
    with connections[router.db_for_write(type(obj), instance=obj)].cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.rowcount == 1
    if inserted:
        mark_saved(obj)
    return inserted


def column_value(model: type[Model], field_name: str, value):
    """A value in the database form of one of a model's columns, for raw SQL parameters: a uuid
    stays a uuid on PostgreSQL but is hex text on SQLite, whose driver refuses uuid objects."""
    return model._meta.get_field(field_name).get_db_prep_value(value, connections["default"])


class RowLoader:
    """Model instances from the columns of a hand-written SELECT, converted as the ORM converts
    them (SQLite's uuid text and integer booleans, JSON, encrypted fields): for the few hot reads
    whose queryset costs more to build and compile than the database takes to answer it.

    `columns(alias)` is the model's concrete columns in field order, for the SELECT list;
    `load(values)` takes exactly that many values and returns the instance (None when the primary
    key is NULL, as a LEFT JOIN gives for a missing row)."""

    def __init__(self, model: type[Model], using: str = "default"):
        self.model = model
        self.using = using
        self.fields = model._meta.concrete_fields
        self.width = len(self.fields)
        self._pk_index = self.fields.index(model._meta.pk)
        self._attnames = [field.attname for field in self.fields]
        self._converters: list[tuple] | None = None

    def columns(self, alias: str) -> str:
        quote = connections[self.using].ops.quote_name
        return ", ".join(f"{alias}.{quote(field.column)}" for field in self.fields)

    def _field_converters(self) -> list[tuple]:
        """Per field: its column expression and the converters the compiler would apply to it."""
        if self._converters is None:
            connection = connections[self.using]
            converters = []
            for field in self.fields:
                column = field.get_col(self.model._meta.db_table)
                converters.append(
                    (column, connection.ops.get_db_converters(column) + column.get_db_converters(connection))
                )
            self._converters = converters
        return self._converters

    def load(self, values) -> Model | None:
        if values[self._pk_index] is None:
            return None
        connection = connections[self.using]
        converted = []
        for (column, converters), value in zip(self._field_converters(), values, strict=True):
            for converter in converters:
                value = converter(value, column, connection)
            converted.append(value)
        return self.model.from_db(self.using, self._attnames, converted)

    @staticmethod
    def load_joined(row, *loaders: "RowLoader") -> list[Model | None]:
        """One instance per loader from a row whose SELECT list is their columns, in that order."""
        instances, start = [], 0
        for loader in loaders:
            instances.append(loader.load(row[start : start + loader.width]))
            start += loader.width
        return instances


# --- Sums over each patient's own last days ---------------------------------------------------------
#
# Lists of many patients (the triage list) sum each patient's recent days of a per-day table (daily
# rollups, prompts). Each patient's window ends on their own journal day — time zones differ — so the
# windows travel with the patients: on PostgreSQL an unnest of two arrays and a LATERAL aggregate per
# patient, which probes the table's (patient_id, local_date) index instead of scanning every clinic's
# rows (a year of 1,000 patients' prompts is over a million); SQLite (the embedded demo) joins a VALUES
# list and groups.

_DAYS_BACK = {
    "postgresql": "(w.today - {table}.local_date)",
    "sqlite": "CAST(julianday(w.today) - julianday({table}.local_date) AS INTEGER)",
}


def sum_recent_days(model: type[Model], today_by_patient: dict, days: int, columns: Sequence[str], params=()) -> dict:
    """{patient_id: (aggregates…)} over each patient's `days` journal days up to their `today` in
    `model`'s table (patient_id and local_date columns), one query. `columns` are SQL aggregates over
    the table, named by its db_table, where `{back}` is a row's days back from the patient's today
    (0 = today); `params` are theirs, in order. Patients without a row in their window are absent."""
    if not today_by_patient:
        return {}
    connection = connections["default"]  # as column_value's, and the callers' compiled conditions
    table = connection.ops.quote_name(model._meta.db_table)
    back = _DAYS_BACK[connection.vendor].format(table=table)
    aggregates = ", ".join(column.replace("{back}", back) for column in columns)
    # The ids as the table stores them (hex text on SQLite), mapped back to the callers' own.
    patient_ids = {column_value(model, "patient", patient_id): patient_id for patient_id in today_by_patient}
    if connection.vendor == "postgresql":
        sql = (
            "SELECT w.patient_id, a.* FROM unnest(%s::uuid[], %s::date[]) AS w(patient_id, today) "  # noqa: S608
            f"CROSS JOIN LATERAL (SELECT COUNT(*) AS n, {aggregates} FROM {table} WHERE {table}.patient_id = "
            f"w.patient_id AND {table}.local_date BETWEEN w.today - {days - 1} AND w.today) a"
        )
        window_params = [list(today_by_patient), list(today_by_patient.values())]
    else:
        sql = (
            f"WITH w(patient_id, today) AS (VALUES {', '.join(['(%s, %s)'] * len(today_by_patient))}) "  # noqa: S608
            f"SELECT w.patient_id, COUNT(*), {aggregates} FROM w JOIN {table} ON {table}.patient_id = w.patient_id "
            f"AND {table}.local_date BETWEEN date(w.today, '-{days - 1} days') AND w.today GROUP BY w.patient_id"
        )
        window_params = [
            value
            for stored_id, today in zip(patient_ids, today_by_patient.values(), strict=True)
            for value in (stored_id, connection.ops.adapt_datefield_value(today))
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*window_params, *params])
        return {patient_ids[patient_id]: tuple(values) for patient_id, found, *values in cursor.fetchall() if found}


# --- Reading timestamptz columns at C speed ---------------------------------------------------------
#
# Django's psycopg 3 backend loads every timestamptz through a subclass of psycopg's pure-Python
# loader (psycopg_any.BaseTzLoader: parse, then replace tzinfo), because psycopg's compiled loader
# cannot be subclassed (Django ticket #36960, psycopg issue #1273). That costs ~4 µs a value against
# ~0.3 µs, which a triage list (3 per patient) and an export (2 per row) pay thousands of times.
# This loader keeps Django's contract — the class carries `timezone`, which Django's create_cursor
# compares, and the result is replace(tzinfo=timezone) — and delegates the parsing to the compiled
# loader that psycopg's global adapters map hands out (the pure-Python one when psycopg has no
# compiled part installed, so behaviour never depends on it).


@lru_cache
def _timestamptz_loader(timezone):
    from psycopg import adapters
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    parser = adapters.get_loader(adapters.types["timestamptz"].oid, Format.TEXT)

    class TimestamptzLoader(Loader):
        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            self._parse = parser(oid, context).load

        def load(self, data):
            return self._parse(data).replace(tzinfo=self.timezone)

    TimestamptzLoader.timezone = timezone
    return TimestamptzLoader


def use_compiled_timestamptz_loader(sender, connection, **kwargs) -> None:
    """connection_created receiver: swaps Django's timestamptz loader on a new PostgreSQL connection
    for one with the same time zone whose parsing is psycopg's compiled loader."""
    if connection.vendor != "postgresql":
        return
    from psycopg.pq import Format

    adapters = connection.connection.adapters
    oid = adapters.types["timestamptz"].oid
    django_loader = adapters.get_loader(oid, Format.TEXT)
    adapters.register_loader(oid, _timestamptz_loader(django_loader.timezone))
