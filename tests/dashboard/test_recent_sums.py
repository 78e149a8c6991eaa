"""The triage list's per-patient sums in SQL (backend.db.sum_recent_days): recent_windows and
recent_prompt_counts equal the per-patient reads they replace — RollupSums over daily_rollups, and
compliance_of's funnel — on random worlds whose patients live in zones that disagree about today's
date, with rows before, inside, at both edges of and after each patient's window. On PostgreSQL in
process, and on SQLite (the embedded demo's database) in a subprocess that migrates a fresh one."""

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

ROOT = Path(__file__).resolve().parents[2]
# 10:30 UTC on the day Europe's clocks go forward: already tomorrow in Kiritimati (UTC+14), still
# yesterday in Pago Pago (UTC−11), today in Berlin and New York.
NOW = datetime(2026, 3, 29, 10, 30, tzinfo=UTC)
ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Berlin", "America/New_York", "Asia/Kolkata")


def build_world(seed: int) -> list:
    """Patients with random rollup rows and prompts from 22 days before to 2 days after their today."""
    from journal.models import DailyRollup
    from reminders.models import Prompt, Schedule
    from tests.factories import ClinicFactory, PatientFactory

    rng = random.Random(seed)
    clinic = ClinicFactory()
    patients = []
    for n in range(12):
        patient = PatientFactory(clinic=clinic, timezone=ZONES[n % len(ZONES)])
        patients.append(patient)
        if n == 0:
            continue  # one patient with nothing at all
        today = patient.journal_day(NOW)[0]
        schedule = Schedule.objects.create(patient=patient, kind="check_in", days=["mon"], time="09:00")
        # One patient with rows only just outside both windows: tomorrow, and 21 and 22 days back.
        days_back = (-1, 21, 22) if n == 1 else range(-2, 23)
        for back in days_back:
            day = today - timedelta(days=back)
            if back in (-1, 0, 6, 7, 13, 14, 20, 21) or rng.random() < 0.6:  # window edges more often than not
                cravings = rng.randrange(0, 4)
                moods = rng.randrange(0, 3)
                DailyRollup.objects.create(
                    patient=patient, local_date=day, entries=cravings + moods + 1, check_ins=rng.randrange(0, 2),
                    uses=rng.choice([0, 0, 1, 2]), craving_sum=sum(rng.randrange(0, 11) for _ in range(cravings)),
                    craving_count=cravings, craving_max=10 if cravings else None,
                    mood_sum=sum(rng.randrange(0, 11) for _ in range(moods)), mood_count=moods,
                    anxiety_sum=0, anxiety_count=0, sleep_sum=0, sleep_count=0,
                )  # fmt: skip
            for slot in range(rng.randrange(0, 3)):
                status = rng.choice(["scheduled", "skipped", "sent", "received", "completed", "expired", "failed"])
                sent = status in ("sent", "received", "completed", "expired")
                at = NOW - timedelta(days=back)
                Prompt.objects.create(
                    patient=patient, schedule=schedule, kind="check_in", local_date=day, slot=slot,
                    scheduled_for=at, expires_at=at + timedelta(hours=2), next_attempt_at=at, status=status,
                    sent_at=at if sent else None, received_at=at if status == "received" else None,
                    completed_at=at if status == "completed" else None,
                )  # fmt: skip
    return patients


def mismatches(seed: int) -> list[str]:
    """Builds a world and returns every difference between the SQL sums and the per-patient reads."""
    from journal.selectors.rollups import RecentWindows, RollupSums, daily_rollups, mean, recent_windows
    from reminders.selectors.compliance import compliance_of, recent_prompt_counts

    found = []
    with time_machine.travel(NOW, tick=False):
        patients = build_world(seed)
        today_by_patient = {patient.pk: patient.journal_day(NOW)[0] for patient in patients}
        prompts = recent_prompt_counts(today_by_patient, days=7)
        for span in (14, 21):  # the triage's two weeks, and a sparkline longer than them
            windows = recent_windows(today_by_patient, week=7, days=span)
            for patient in patients:
                today = today_by_patient[patient.pk]
                days = daily_rollups(patient, today - timedelta(days=span - 1), today)
                expected = None
                if days:
                    back = [days.get(today - timedelta(days=n)) for n in range(span)]
                    expected = RecentWindows(
                        this_week=RollupSums.over(back[:7]),
                        last_week=RollupSums.over(back[7:14]),
                        craving_daily=[mean(day.craving_sum, day.craving_count) if day else None for day in back[::-1]],
                    )
                if windows.get(patient.pk) != expected:
                    found.append(f"{patient.timezone} {span} days: {windows.get(patient.pk)} != {expected}")
        for patient in patients:
            today = today_by_patient[patient.pk]
            funnel = compliance_of(patient, from_date=today - timedelta(days=6), to_date=today)
            expected_prompts = (funnel["sent"], funnel["completed"]) if funnel["scheduled"] else None
            if prompts.get(patient.pk) != expected_prompts:
                found.append(f"{patient.timezone} prompts: {prompts.get(patient.pk)} != {expected_prompts}")
    assert len(set(today_by_patient.values())) == 3  # the zones disagree about today
    assert patients[1].pk not in windows and patients[1].pk not in prompts  # rows only outside the windows
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sums_in_sql_equal_the_per_patient_reads_on_postgresql(seed):
    assert mismatches(seed) == []


def test_sums_in_sql_equal_the_per_patient_reads_on_sqlite(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(EMBEDDED="true", VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="backend.settings")
    code = (
        "import json, django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from django.db import connection\n"
        "call_command('migrate', verbosity=0)\n"
        "assert connection.vendor == 'sqlite'\n"
        "from tests.dashboard.test_recent_sums import mismatches\n"
        "print(json.dumps([mismatches(seed) for seed in (1, 2)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[], []]
