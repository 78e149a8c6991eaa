"""The clinician dashboard in a real browser (SPEC §12, issue 6): one test per flow a clinician goes
through. Each saves a screenshot of every page it visits (var/screenshots/) and runs axe-core on it.

The data is written through the services (and the API where a phone would write it) in the test;
the live server sees it because these tests commit (transactional_db), and the database is emptied
after each. Times are whole minutes: the page's JSON (Django's encoder) cuts microseconds to
milliseconds where the API's keeps them.
"""

import re
import uuid
from base64 import b32encode
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect
from rest_framework.test import APIClient

from accounts.models import Patient, User
from journal.models import Alert, AlertStatus, SessionKind, TherapySession
from journal.selectors.trends import journal_today
from journal.services.alerts import alert_raise
from journal.services.entries import entry_create
from journal.services.sessions import session_create
from tests.browser.conftest import assert_accessible, screenshot
from tests.factories import PASSWORD, enrolled_patient
from tests.totp import totp_code

TRIGGERS = ["stress", "boredom", "loneliness", "conflict", "cue_exposure"]


def _now() -> datetime:
    return timezone.now().replace(second=0, microsecond=0)


def _patient(clinician: User, name: str, *, joined_days_ago: int = 0) -> Patient:
    patient = enrolled_patient(clinician.clinic, display_name=name)
    patient.care_team_memberships.create(clinician=clinician)
    if joined_days_ago:
        # Entries may go back at most 30 days before a patient joined (SPEC §5's limits).
        Patient.objects.filter(pk=patient.pk).update(created_at=timezone.now() - timedelta(days=joined_days_ago))
        patient.refresh_from_db()
    return patient


def _entry(patient: Patient, at: datetime, **content) -> None:
    content.setdefault("kind", "craving")
    entry_create(patient=patient, data={"id": uuid.uuid4(), "occurred_at": at, **content})


def _as(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _traces(page, chart_id: str) -> dict[str, dict]:
    traces = page.evaluate(
        "id => document.getElementById(id).data.map(t => ({name: t.name, x: t.x, y: t.y}))", chart_id
    )
    return {trace["name"]: trace for trace in traces}


# --- b. the triage list -----------------------------------------------------------------------------


def test_the_triage_list_puts_the_most_urgent_first_and_searches(page, clinician, sign_in):
    now = _now()
    urgent = _patient(clinician, "Zoe")
    alert_raise(patient=urgent, rule="phq9_self_harm", evidence=[{"at": now.isoformat()}], now=now)
    used = _patient(clinician, "Yusuf")
    _entry(used, now - timedelta(days=2), kind="use", substance="alcohol")
    rising = _patient(clinician, "Xena")
    for days_ago, craving in ((8, 2), (9, 2), (10, 2), (1, 3), (2, 4), (3, 3)):  # +1.3, under the alert's 2.0
        _entry(rising, now - timedelta(days=days_ago, hours=1), craving=craving)
    silent = _patient(clinician, "Wren")
    for days_ago in (10, 11):
        _entry(silent, now - timedelta(days=days_ago, hours=1), craving=3)
    calm = _patient(clinician, "Ava")
    for days_ago in (0, 8):
        _entry(calm, now - timedelta(days=days_ago, minutes=30), craving=3)
    sign_in(clinician)

    page.goto("/dashboard/")
    rows = page.locator("tbody#triage-rows tr[data-patient-id]")
    expect(rows).to_have_count(5)
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.patientId)") == [
        str(p.pk) for p in (urgent, used, rising, silent, calm)
    ]
    expect(rows.first.locator(".badge.urgent")).to_be_visible()
    screenshot(page, "triage")
    assert_accessible(page)

    page.get_by_label("Search by name").fill("yu")  # HTMX swaps the table body after a short pause
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-patient-id", str(used.pk))
    expect(page).to_have_url(re.compile(r"[?&]q=yu"))
    screenshot(page, "triage-search")
    assert_accessible(page)

    page.get_by_label("Search by name").fill("nobody by that name")
    expect(page.locator("tbody#triage-rows")).to_contain_text("No patient on your care teams matches")
    expect(rows).to_have_count(0)


# --- c. the patient page's charts -------------------------------------------------------------------


def _sixty_days(patient: Patient, clinician: User, now: datetime) -> None:
    for back in range(60):
        day = now - timedelta(days=back)
        craving = (back * 7) % 9  # 0…8, never two 8s in a row
        _entry(
            patient, day - timedelta(hours=2 + back % 5), kind="check_in", craving=craving, mood=(back * 3) % 11,
            anxiety=back % 6, sleep_hours=6 + (back % 5) * 0.5, triggers=[TRIGGERS[back % 5]],
        )  # fmt: skip
        if back % 2:
            _entry(patient, day - timedelta(hours=9), craving=(back * 5) % 8, triggers=TRIGGERS[: 1 + back % 3])
        if back % 13 == 4:
            _entry(patient, day - timedelta(hours=6), kind="use", substance="alcohol", amount="3 drinks")
    for days_ago in (40, 20):
        session_create(
            patient=patient, created_by=clinician,
            data={"kind": SessionKind.KETAMINE, "starts_at": now - timedelta(days=days_ago), "duration_minutes": 90,
                  "route": "im", "dose_mg": 50},
        )  # fmt: skip
    phone = _as(patient.user)
    questionnaires = [
        ("phq9", [2, 2, 1, 2, 1, 1, 1, 1, 0], 45),
        ("phq9", [1, 1, 1, 1, 0, 1, 0, 0, 0], 10),
        ("gad7", [2, 1, 1, 2, 1, 0, 1], 10),
    ]
    for instrument, answers, days_ago in questionnaires:
        completed_at = (now - timedelta(days=days_ago)).isoformat()
        body = {"id": str(uuid.uuid4()), "instrument": instrument, "answers": answers, "completed_at": completed_at}
        response = phone.post("/api/v1/assessments/", body, format="json")
        assert response.status_code == 201, response.content


def test_the_patient_page_charts_draw_what_the_trends_api_returns(page, clinician, sign_in):
    now = _now()
    patient = _patient(clinician, "Morgan", joined_days_ago=45)
    _sixty_days(patient, clinician, now)
    today = journal_today(patient)
    api = _as(clinician)
    trends = api.get(
        f"/api/v1/patients/{patient.pk}/trends/", {"from": str(today - timedelta(days=89)), "to": str(today)}
    ).json()
    around_sessions = api.get(f"/api/v1/patients/{patient.pk}/trends/sessions/", {"kind": "ketamine"}).json()
    sign_in(clinician)

    page.goto(f"/dashboard/patients/{patient.pk}/?days=90")
    expect(page.locator("body[data-charts-ready=true]")).to_have_count(1)
    expect(page.get_by_role("heading", name="Morgan", level=1)).to_be_visible()
    for chart in ("daily", "sessions", "assessments", "hours", "triggers"):
        expect(page.locator(f"#chart-{chart} .main-svg").first).to_be_visible()
    screenshot(page, "patient")
    # Plotly's "Share chart" button uploads the chart, patient data and all, to Plotly's cloud.
    expect(page.get_by_role("button", name=re.compile("share", re.I), include_hidden=True)).to_have_count(0)

    daily = _traces(page, "chart-daily")
    days, rolling = trends["days"], trends["rolling_7d"]
    assert daily["Craving (daily mean)"]["x"] == [d["date"] for d in days]
    assert daily["Craving (daily mean)"]["y"] == [d["craving_mean"] for d in days]
    assert daily["Mood (daily mean)"]["y"] == [d["mood_mean"] for d in days]
    assert daily["Craving (7-day mean)"]["x"] == [d["date"] for d in rolling]
    assert daily["Craving (7-day mean)"]["y"] == [d["craving_mean"] for d in rolling]
    assert daily["Mood (7-day mean)"]["y"] == [d["mood_mean"] for d in rolling]
    assert len(trends["uses"]) == 5
    assert [_instant(x) for x in daily["Use"]["x"]] == [_instant(u["occurred_at"]) for u in trends["uses"]]
    session_lines = page.evaluate("() => document.getElementById('chart-daily').layout.shapes.map(s => s.x0)")
    assert session_lines == [s["local_date"] for s in trends["sessions"]] and len(session_lines) == 2

    overlay = _traces(page, "chart-sessions")
    average = around_sessions["average"]["days"]
    assert overlay["Average"]["x"] == [d["offset"] for d in average]
    assert overlay["Average"]["y"] == [d["craving_mean"] for d in average]
    for session in around_sessions["sessions"]:
        drawn = overlay[f"Session {session['local_date']}"]
        assert drawn["y"] == [d["craving_mean"] for d in session["days"]]

    scores = _traces(page, "chart-assessments")
    for name, code in (("PHQ-9", "phq9"), ("GAD-7", "gad7")):
        rows = [a for a in trends["assessments"] if a["instrument"] == code]
        assert scores[name]["y"] == [a["score"] for a in rows] and rows
        assert [_instant(x) for x in scores[name]["x"]] == [_instant(a["completed_at"]) for a in rows]

    hours = _traces(page, "chart-hours")["Craving mean"]
    assert hours["x"] == [h["hour"] for h in trends["hours"]]
    assert hours["y"] == [h["craving_mean"] for h in trends["hours"]]

    triggers = _traces(page, "chart-triggers")["Times named"]
    assert list(reversed(triggers["y"])) == [t["trigger"] for t in trends["triggers"]]
    assert list(reversed(triggers["x"])) == [t["count"] for t in trends["triggers"]]

    expect(page.locator("#summary-craving")).to_have_text(str(trends["summary"]["craving_mean"]))
    assert_accessible(page)


# --- g. the keyboard ------------------------------------------------------------------------------


def test_the_first_tab_reaches_the_skip_link_with_a_visible_focus_ring(page, clinician, sign_in):
    _patient(clinician, "Kai")
    sign_in(clinician)
    page.goto("/dashboard/")
    expect(page.locator("tbody#triage-rows tr[data-patient-id]")).to_have_count(1)

    page.keyboard.press("Tab")
    focused = page.locator(":focus")
    expect(focused).to_have_text("Skip to content")
    expect(focused).to_be_in_viewport()
    outline = focused.evaluate("e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth]; }")
    assert outline[0] != "none" and outline[1] != "0px", outline
    screenshot(page, "keyboard-skip-link")

    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    page.keyboard.press("Tab")  # the next stop is inside the main content, past the header
    assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)")
    assert_accessible(page)


# --- a. signing in with a TOTP code ----------------------------------------------------------------


def _password_step(page, user: User) -> None:
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_clinician_signs_in_with_a_password_and_a_totp_code(page, clinician, settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    device = TOTPDevice.objects.create(user=clinician, name="Authenticator app", confirmed=True)
    _patient(clinician, "Noor")

    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/login/\?next=/dashboard/$"))
    screenshot(page, "sign-in")
    assert_accessible(page)
    _password_step(page, clinician)

    expect(page).to_have_url(re.compile(r"/dashboard/login/code/"))
    expect(page.get_by_role("heading", name="Enter your two-factor code")).to_be_visible()
    screenshot(page, "sign-in-code")
    assert_accessible(page)
    page.get_by_label("Code").fill(totp_code(device))
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.get_by_role("heading", name="Your patients")).to_be_visible()
    expect(page.locator("tbody#triage-rows tr[data-patient-id]")).to_have_count(1)


def test_a_clinician_without_an_authenticator_sets_one_up_at_sign_in(page, clinician, settings):
    settings.DASHBOARD_REQUIRE_2FA = True

    page.goto("/dashboard/login/")
    _password_step(page, clinician)

    expect(page).to_have_url(re.compile(r"/dashboard/login/set-up-two-factor/"))
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    device = TOTPDevice.objects.get(user=clinician, confirmed=False)
    shown_key = page.locator("#totp-secret").inner_text()
    assert shown_key.replace(" ", "") == b32encode(device.bin_key).decode()
    screenshot(page, "two-factor-setup")
    assert_accessible(page)
    page.get_by_label("Code").fill(totp_code(device))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()

    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.get_by_role("status")).to_contain_text("Two-factor sign-in is set up")
    device.refresh_from_db()
    assert device.confirmed


# --- d. the alert inbox ----------------------------------------------------------------------------


def test_a_clinician_acknowledges_and_resolves_an_alert_in_the_inbox(page, clinician, sign_in):
    patient = _patient(clinician, "Quinn")
    _entry(patient, _now() - timedelta(hours=3), kind="use", substance="cocaine")
    alert = Alert.objects.get(patient=patient, rule="use_reported")
    sign_in(clinician)

    page.goto("/dashboard/alerts/")
    row = page.locator(f"#alert-{alert.pk}")
    expect(row).to_contain_text("Reported substance use")
    screenshot(page, "alerts")
    assert_accessible(page)

    row.get_by_label("Note").fill("Called Quinn: safe, going to a meeting tonight.")
    row.get_by_role("button", name="Acknowledge the alert of Quinn").click()
    expect(row.get_by_role("status")).to_have_text("Alert acknowledged.")  # the row is swapped in place
    expect(row).to_contain_text("Acknowledged by Dr Rowan Vale")
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.acknowledge_note) == (
        AlertStatus.ACKNOWLEDGED, clinician, "Called Quinn: safe, going to a meeting tonight."
    )  # fmt: skip

    # The browser asks for the note first; without its check the server refuses as well.
    resolve = row.get_by_role("button", name="Resolve the alert of Quinn")
    resolve.evaluate("button => { button.form.noValidate = true; }")
    resolve.click()
    expect(row.get_by_role("alert")).to_contain_text("the note is required")
    screenshot(page, "alerts-resolve-without-note")
    assert_accessible(page)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED

    row.get_by_label("How it was resolved").fill("Relapse plan reviewed at the session.")
    row.get_by_role("button", name="Resolve the alert of Quinn").click()
    expect(row.get_by_role("status")).to_have_text("Alert resolved.")
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by, alert.resolve_note) == (
        AlertStatus.RESOLVED, clinician, "Relapse plan reviewed at the session."
    )  # fmt: skip
    assert alert.resolved_at is not None and alert.acknowledged_at is not None

    page.reload()  # the inbox lists what still needs someone
    expect(page.locator(f"#alert-{alert.pk}")).to_have_count(0)
    expect(page.get_by_text("No alerts match these filters.")).to_be_visible()
    screenshot(page, "alerts-resolved")
    assert_accessible(page)


# --- e. scheduling a session -----------------------------------------------------------------------


def test_a_clinician_schedules_a_session_in_the_patients_time_zone(page, clinician, sign_in):
    patient = _patient(clinician, "Sam")  # America/New_York
    day = journal_today(patient) + timedelta(days=7)
    sign_in(clinician)

    page.goto(f"/dashboard/patients/{patient.pk}/sessions/")
    expect(page.get_by_role("heading", name="Sessions of Sam")).to_be_visible()
    screenshot(page, "sessions")
    assert_accessible(page)

    kind = page.get_by_label("Kind of session")
    kind.select_option("psychotherapy")
    expect(page.get_by_label("Ketamine route")).to_be_hidden()  # route and dose are for ketamine only
    kind.select_option("ketamine")
    page.get_by_label("Starts at").fill(f"{day.isoformat()}T10:30")
    page.get_by_label("Duration (minutes)").fill("90")
    page.get_by_label("Ketamine route").select_option("im")
    page.get_by_label("Ketamine dose (mg)").fill("35.5")
    page.get_by_label("Notes (care team only)").fill("Bring a support person.")
    page.get_by_role("button", name="Schedule the session").click()

    expect(page.get_by_role("status")).to_contain_text("Session scheduled.")
    session = TherapySession.objects.get(patient=patient)
    assert session.starts_at == datetime.combine(day, time(10, 30), tzinfo=ZoneInfo("America/New_York"))
    assert (session.kind, session.duration_minutes, session.route, session.dose_mg, session.created_by) == (
        SessionKind.KETAMINE, 90, "im", Decimal("35.5"), clinician
    )  # fmt: skip
    upcoming = page.get_by_role("table", name="Upcoming")
    expect(
        upcoming.locator(f"time[datetime='{session.starts_at.astimezone(patient.zone).isoformat()}']")
    ).to_have_count(1)
    screenshot(page, "sessions-scheduled")
    assert_accessible(page)


# --- f. enrolling a patient ------------------------------------------------------------------------


def test_a_clinician_enrolls_a_patient_and_the_code_works_in_the_app(page, clinician, sign_in):
    sign_in(clinician)

    page.goto("/dashboard/patients/new/")
    screenshot(page, "enroll")
    assert_accessible(page)
    page.get_by_label("Name shown to the care team").fill("Robin")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_label("Alcohol").check()
    page.get_by_label("Cocaine").check()
    page.get_by_role("button", name="Add the patient and show the code").click()

    code = page.locator("#enrollment-code").inner_text().strip()
    expect(
        page.get_by_role("img", name=f"QR code for the Interlude app holding the enrollment code {code}")
    ).to_be_visible()
    screenshot(page, "enrollment-code")
    assert_accessible(page)
    patient = Patient.objects.get(display_name="Robin")
    assert (patient.clinic, patient.timezone, sorted(patient.substances)) == (
        clinician.clinic, "Europe/Berlin", ["alcohol", "cocaine"]
    )  # fmt: skip
    assert patient.care_team_memberships.filter(clinician=clinician).exists()

    phone = APIClient()
    consent = phone.get("/api/v1/consent/", {"code": code})
    assert consent.status_code == 200, consent.content
    body = {"code": code, "email": "robin@example.org", "password": "a-long-phone-passphrase",
            "consent_version": consent.json()["version"]}  # fmt: skip
    enrolled = phone.post("/api/v1/auth/enroll/", body, format="json")
    assert enrolled.status_code == 201, enrolled.content
    assert enrolled.json()["user"]["role"] == "patient"
    again = phone.post("/api/v1/auth/enroll/", {**body, "email": "robin2@example.org"}, format="json")
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_code"
