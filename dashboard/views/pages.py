"""The pages a clinician reads: the triage list and a patient's page (SPEC §12). Thin: the rows and
figures come from the same selectors as the API, and every read writes its access-log rows."""

from django.shortcuts import get_object_or_404, render

from accounts.models import AccessAction
from accounts.selectors import patients_visible_to
from accounts.services import access_log_record
from dashboard import table_rows
from dashboard.auth import clinician_required
from dashboard.selectors import ORDERINGS, PATIENT_PAGE_RANGES, patient_overview, triage_rows
from journal.services.entries import CLIENT_FIELDS, canonical

ORDERING_LABELS = {
    "attention": "Needs attention first",
    "name": "Name, A to Z",
    "-name": "Name, Z to A",
    "last_entry": "Longest silence first",
    "-last_entry": "Latest entry first",
}
SPARKLINE_WIDTH, SPARKLINE_HEIGHT = 112, 28


def sparkline(values: list[float | None]) -> dict:
    """A 14-day craving sparkline as SVG polyline segments (a gap where a day has no data) and the
    same figures as text for screen readers."""
    step = SPARKLINE_WIDTH / max(len(values) - 1, 1)
    runs: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((index * step, SPARKLINE_HEIGHT - 2 - (value / 10) * (SPARKLINE_HEIGHT - 4)))
    lines = [" ".join(f"{x:.1f},{y:.1f}" for x, y in run) for run in runs if len(run) > 1]
    dots = [{"x": f"{run[0][0]:.1f}", "y": f"{run[0][1]:.1f}"} for run in runs if len(run) == 1]
    text = ", ".join("no entry" if value is None else f"{value:g}" for value in values)
    return {"lines": lines, "dots": dots, "label": text}


@clinician_required
def triage(request):
    query = request.GET.get("q", "").replace("\x00", "").strip()[:100]  # PostgreSQL text holds no NUL
    ordering = request.GET.get("ordering", "attention")
    if ordering not in ORDERINGS:
        ordering = "attention"
    rows = triage_rows(request.user, query=query, ordering=ordering)
    access_log_record(request, patients=[row["id"] for row in rows], action=AccessAction.LIST)
    for row in rows:
        row["sparkline"] = sparkline(row["craving_daily_14d"])
    context = {
        "rows": rows,
        "row_html": table_rows.triage_rows(rows, sparkline_size=(SPARKLINE_WIDTH, SPARKLINE_HEIGHT)),
        "query": query,
        "ordering": ordering,
        "orderings": ORDERING_LABELS,
        "ordering_label": ORDERING_LABELS[ordering],
        "nav": "triage",
    }
    # Search and re-ordering swap only the table body when HTMX is there; the page works without it.
    template = "dashboard/_triage_rows.html" if request.htmx else "dashboard/triage.html"
    return render(request, template, context)


def _shown(value) -> str:
    if value is None or value == "" or value == []:
        return "–"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def edit_history(entry) -> list[dict]:
    """What each edit changed, newest first: every revision holds the content before an edit, so
    it is compared with the content that replaced it (the next revision, or the entry itself)."""
    history, newer_content, newer_note = [], None, entry.note
    for revision in entry.revisions.all():  # prefetched, newest first
        newer = newer_content or canonical({field: getattr(entry, field) for field in CLIENT_FIELDS})
        changes = [
            f"{field.replace('_', ' ')} {_shown(before)} → {_shown(newer.get(field))}"
            for field, before in revision.content.items()
            if _shown(before) != _shown(newer.get(field)) and field not in ("id", "prompt_id")
        ]
        if revision.note != newer_note:
            changes.append("note changed")
        history.append({"replaced_at": revision.replaced_at, "changes": changes, "note": revision.note})
        newer_content, newer_note = revision.content, revision.note
    return history


@clinician_required
def patient(request, patient_id):
    patient = get_object_or_404(patients_visible_to(request.user).select_related("clinic"), pk=patient_id)
    try:
        days = int(request.GET.get("days", 90))
    except ValueError:
        days = 90
    if days not in PATIENT_PAGE_RANGES:
        days = 90
    access_log_record(request, patients=[patient], action=AccessAction.VIEW)
    overview = patient_overview(request.user, patient, days=days)
    trends = overview["trends"]
    charts = {
        "days": trends["days"],
        "rolling_7d": trends["rolling_7d"],
        "uses": trends["uses"],
        "sessions": trends["sessions"],
        "assessments": trends["assessments"],
        "hours": trends["hours"],
        "triggers": trends["triggers"],
        "session_trends": overview["session_trends"],
        "bands": overview["bands"],
    }
    for entry in overview["entries"]:
        entry.history = edit_history(entry)
    context = {
        "patient": patient,
        "daily_rows": table_rows.daily_rows(trends["days"], trends["rolling_7d"]),
        "days": days,
        "ranges": PATIENT_PAGE_RANGES,
        "charts": charts,
        "nav": "triage",
        **overview,
    }
    return render(request, "dashboard/patient.html", context)
