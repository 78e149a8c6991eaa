"""The dashboard's long tables, rendered in Python: a year of daily figures or a thousand triage
rows through Django's template engine cost hundreds of milliseconds (every cell is a variable
lookup, a filter chain and an autoescape), which would blow the pages' budgets (issue 6: patient
page p95 ≤ 150 ms, triage page ≤ 200 ms). The markup is the same a template would produce; every
string from the database goes through `escape`."""

from datetime import date, datetime

from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

DASH = "–"
SEVERITIES = ("urgent", "high", "medium", "low")


def _figure(value) -> str:
    return DASH if value is None else str(value)


def _day(value: date | str) -> str:
    if isinstance(value, str):  # the trends selector may hand dates over as ISO text, ready for JSON
        value = date.fromisoformat(value)
    return f"{value:%a} {value.day} {value:%b %Y}"


def daily_rows(days: list[dict], rolling: list[dict]) -> SafeString:
    """<tr>s of the patient page's daily table: one per day of `days`, with its 7-day means."""
    cells = []
    for day, window in zip(days, rolling, strict=True):
        cells.append(
            f'<tr><th scope="row">{_day(day["date"])}</th><td class="num">{day["entries"]}</td>'
            f'<td class="num">{_figure(day["craving_mean"])}</td><td class="num">{_figure(day["craving_max"])}</td>'
            f'<td class="num">{_figure(day["mood_mean"])}</td><td class="num">{_figure(day["anxiety_mean"])}</td>'
            f'<td class="num">{_figure(day["sleep_hours"])}</td><td>{"yes" if day["used"] else DASH}</td>'
            f'<td>{"yes" if day["check_in"] else DASH}</td><td class="num">{_figure(window["craving_mean"])}</td>'
            f'<td class="num">{_figure(window["mood_mean"])}</td></tr>'
        )
    return mark_safe("".join(cells))  # noqa: S308 - numbers, dates and fixed words only


def _badges(alerts: dict) -> str:
    badges = [
        f'<span class="badge {severity}" title="{count} {severity}">{count} '
        f'<span class="visually-hidden">{severity}</span></span>'
        for severity in SEVERITIES
        if (count := alerts.get(severity))
    ]
    return " ".join(badges) if badges else '<span class="muted">none</span>'


def _sparkline(line: dict, width: int, height: int) -> str:
    shapes = "".join(f'<polyline points="{points}"/>' for points in line["lines"])
    shapes += "".join(f'<circle cx="{d["x"]}" cy="{d["y"]}" r="1.8" fill="#0b4f8a"/>' for d in line["dots"])
    return (
        f'<svg class="sparkline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Daily mean craving, last 14 days: {line["label"]}">{shapes}</svg>'
    )


def _silence(row: dict) -> str:
    if not row["last_entry_at"]:
        return '<span class="muted">never</span>'
    days = row["days_since_last_entry"]
    return {0: "today", 1: "yesterday"}.get(days, f"{days} days ago")


def _when(moment: datetime | None) -> str:
    if moment is None:
        return '<span class="muted">none</span>'
    local = timezone.localtime(moment)
    return f'<time datetime="{local.isoformat()}">{local:%a} {local.day} {local:%b, %H:%M}</time>'


def _percent(rate: float | None) -> str:
    return DASH if rate is None else f"{round(rate * 100)}%"


def triage_rows(rows: list[dict], *, sparkline_size: tuple[int, int]) -> SafeString:
    """<tr>s of the triage table, one per row of dashboard.selectors.triage_rows (with `sparkline`)."""
    placeholder = "00000000-0000-0000-0000-000000000000"
    patient_url = reverse("dashboard:patient", args=[placeholder]).replace(placeholder, "{id}")
    width, height = sparkline_size
    cells = []
    for row in rows:
        status = "" if row["status"] == "active" else f' <span class="muted">({escape(row["status"])})</span>'
        cells.append(
            f'<tr data-patient-id="{row["id"]}">'
            f'<th scope="row"><a href="{patient_url.format(id=row["id"])}">'
            f"{escape(row['display_name'])}</a>{status}</th>"
            f'<td class="alerts">{_badges(row["open_alerts"])}</td>'
            f"<td>{_sparkline(row['sparkline'], width, height)}</td>"
            f'<td class="num">{_figure(row["craving_mean_7d"])} '
            f'<span class="muted">({_figure(row["craving_mean_prev_7d"])})</span></td>'
            f'<td class="num">{_figure(row["mood_mean_7d"])}</td><td class="num">{row["use_days_7d"]}</td>'
            f'<td>{_silence(row)}</td><td class="num">{row["check_in_days_7d"]}</td>'
            f'<td class="num">{_percent(row["compliance_7d"])}</td><td>{_when(row["next_session_at"])}</td></tr>'
        )
    return mark_safe("".join(cells))  # noqa: S308 - names escaped above; the rest numbers and fixed words
