"""Small database helpers the ORM does not offer directly."""

from django.db import connections, router
from django.db.models import Model
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery

_insert_sql: dict[tuple[type[Model], str], str] = {}


def insert_statement(obj: Model) -> tuple[str, list]:
    """`INSERT … ON CONFLICT DO NOTHING` for one instance: Django's own statement (InsertQuery),
    compiled once per model and database since its text is the same for every row, with values
    from each field's pre_save and get_db_prep_save exactly as in Model.save() (encryption too)."""
    model = type(obj)
    using = router.db_for_write(model, instance=obj)
    fields = model._meta.local_concrete_fields
    sql = _insert_sql.get((model, using))
    if sql is None:
        query = InsertQuery(model, on_conflict=OnConflict.IGNORE)
        query.insert_values(fields, [obj])
        [(sql, _)] = query.get_compiler(using=using).as_sql()
        _insert_sql[(model, using)] = sql
    connection = connections[using]
    return sql, [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]


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
