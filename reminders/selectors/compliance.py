"""Prompt compliance in CREMAS terms (SPEC §7): a funnel over the prompts due in a range of
journal days, overall and per prompt kind.

Two queries whatever the range: the counts (and, on PostgreSQL, each kind's median latency)
grouped by kind, whose sums are the totals; and the overall median latency, which is not a sum of
per-kind medians. SQLite has no percentile_cont, so the embedded demo fetches only the completed
prompts' latencies, ordered, and takes the medians in Python.
"""

import statistics
from datetime import date, timedelta
from functools import cache

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, Q, QuerySet
from django.db.models.sql import Query

from accounts.models import Patient
from backend.db import sum_recent_days
from reminders.models import Prompt, PromptKind, PromptStatus

_SENT = Q(sent_at__isnull=False)
# Every count is a filter over the prompts due in the range (scheduled = all of them).
FUNNEL = {
    "scheduled": Q(),
    "skipped": Q(status=PromptStatus.SKIPPED),  # never sent, by rule (quiet hours, already done)
    "failed": Q(status=PromptStatus.FAILED),  # never delivered
    "sent": _SENT,  # delivered, whatever happened after
    "received": _SENT & (Q(received_at__isnull=False) | Q(completed_at__isnull=False)),  # an answer is a receipt
    "completed": Q(completed_at__isnull=False),
    "expired": _SENT & Q(status=PromptStatus.EXPIRED),  # sent, never answered in time
}
COUNTS = tuple(FUNNEL)
_ANSWERED = Q(completed_at__isnull=False, sent_at__isnull=False)


class _EpochSeconds(Func):
    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"
    output_field = FloatField()


class _Median(Aggregate):
    """PostgreSQL's continuous median (the mean of the two middle values for an even count)."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _latency():
    return F("completed_at") - F("sent_at")


def _empty_funnel() -> dict:
    return {**dict.fromkeys(COUNTS, 0), "completion_rate": None, "median_latency_seconds": None}


def _with_rate(funnel: dict) -> dict:
    funnel["completion_rate"] = funnel["completed"] / funnel["sent"] if funnel["sent"] else None
    return funnel


def _due(patient: Patient, from_date: date, to_date: date) -> QuerySet[Prompt]:
    return Prompt.objects.filter(patient=patient, local_date__gte=from_date, local_date__lte=to_date)


def compliance_of(patient: Patient, *, from_date: date, to_date: date) -> dict:
    """{from, to, <COUNTS>, completion_rate, median_latency_seconds, by_kind: {kind: funnel}}.

    completion_rate = completed / sent (None when nothing was sent); latency = completed_at −
    sent_at in seconds (None when nothing was completed). Every kind appears in by_kind.
    """
    due = _due(patient, from_date, to_date)
    postgres = connection.vendor == "postgresql"
    annotations = {name: Count("id", filter=condition or None) for name, condition in FUNNEL.items()}
    if postgres:
        annotations["median_latency_seconds"] = _Median(_EpochSeconds(_latency()), filter=_ANSWERED)
    rows = due.order_by().values("kind").annotate(**annotations)

    by_kind = {kind: _empty_funnel() for kind in PromptKind.values}
    totals = _empty_funnel()
    for row in rows:
        funnel = by_kind.setdefault(row["kind"], _empty_funnel())
        for name in COUNTS:
            funnel[name] = row[name]
            totals[name] += row[name]
        funnel["median_latency_seconds"] = row.get("median_latency_seconds")

    if postgres:
        totals["median_latency_seconds"] = due.aggregate(median=_Median(_EpochSeconds(_latency()), filter=_ANSWERED))[
            "median"
        ]
    else:
        _medians_in_python(due, by_kind, totals)

    for funnel in by_kind.values():
        _with_rate(funnel)
    return {"from": from_date, "to": to_date, **_with_rate(totals), "by_kind": by_kind}


def _medians_in_python(due: QuerySet[Prompt], by_kind: dict, totals: dict) -> None:
    latencies: dict[str, list[float]] = {}
    everything: list[float] = []
    for kind, latency in (
        due.filter(_ANSWERED).annotate(latency=_latency()).order_by("latency").values_list("kind", "latency")
    ):
        seconds = latency.total_seconds() if isinstance(latency, timedelta) else float(latency) / 1e6
        latencies.setdefault(kind, []).append(seconds)
        everything.append(seconds)
    for kind, values in latencies.items():
        by_kind[kind]["median_latency_seconds"] = statistics.median(values)
    totals["median_latency_seconds"] = statistics.median(everything) if everything else None


def _funnel_sql(name: str) -> tuple[str, list]:
    """FUNNEL[name] as an SQL condition over the prompt table (named by its db_table), compiled by
    the ORM so that the funnel's terms stay defined in one place."""
    query = Query(Prompt)
    return query.build_where(FUNNEL[name]).as_sql(query.get_compiler(connection=connection), connection)


@cache
def _sent_completed_columns(vendor: str) -> tuple[list[str], list]:
    """The two aggregates and their parameters, compiled once per database vendor."""
    columns, params = [], []
    for name in ("sent", "completed"):
        condition, condition_params = _funnel_sql(name)
        columns.append(f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)")
        params += condition_params
    return columns, params


def recent_prompt_counts(today_by_patient: dict, *, days: int) -> dict:
    """{patient_id: (sent, completed)} of the prompts due on each patient's last `days` journal days
    up to their `today`, in the funnel's terms; patients without a prompt due then are absent. One
    query for any number of patients (backend.db.sum_recent_days)."""
    columns, params = _sent_completed_columns(connection.vendor)
    return sum_recent_days(Prompt, today_by_patient, days, columns, params)
