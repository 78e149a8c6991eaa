"""The demo clinic that `make run` shows on first start. Deterministic: the same seed, the same clinic."""

import random
from unittest.mock import patch

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Clinic, PatientStatus
from accounts.services import care_team_add, clinician_create, patient_create, patient_enroll
from backend import demo_alerts, demo_reminders
from backend import demo_histories as stories

DEMO_CLINIC = "Harbor Recovery Clinic (demo)"
DEMO_CLINICIAN = ("clinician@demo.interlude.test", "interlude-demo-clinician", "Dr. Maya Okafor")
DEMO_COLLEAGUE = ("colleague@demo.interlude.test", "interlude-demo-colleague", "Sam Reyes, LCSW")
DEMO_ADMIN = ("admin@demo.interlude.test", "interlude-demo-admin", "Jordan Lee (clinic admin)")
DEMO_PATIENT_PASSWORD = "interlude-demo-patient"

# name, zone, substances, status, enrolled, the story their last four months tell (none: not enrolled yet)
DEMO_PATIENTS = [
    ("Alex M.", "America/New_York", ["alcohol"], PatientStatus.ACTIVE, True, stories.IMPROVING_WITH_KETAMINE),
    ("Bea K.", "America/Chicago", ["cocaine", "alcohol"], PatientStatus.ACTIVE, True, stories.RELAPSING),
    ("Carlos R.", "America/Los_Angeles", ["cocaine"], PatientStatus.ACTIVE, True, stories.GONE_QUIET),
    ("Dana W.", "America/Denver", ["alcohol", "nicotine"], PatientStatus.ACTIVE, True, stories.WORSENING_MOOD),
    ("Eli S.", "Europe/London", ["opioids"], PatientStatus.ACTIVE, True, stories.THOUGHTS_OF_SELF_HARM),
    (
        "Farah N.",
        "America/New_York",
        ["alcohol", "cannabis"],
        PatientStatus.ACTIVE,
        True,
        stories.STEADY_MORNINGS,
    ),
    ("Gus T.", "America/Phoenix", ["stimulants"], PatientStatus.ACTIVE, True, stories.STEADY_WITH_KETAMINE),
    ("Hana Y.", "Pacific/Honolulu", ["alcohol"], PatientStatus.ACTIVE, True, stories.EARLY_LAPSES_THEN_STABLE),
    ("Ivan P.", "America/New_York", ["cocaine", "nicotine"], PatientStatus.PAUSED, True, stories.PAUSED),
    ("Jo B.", "America/Chicago", ["sedatives"], PatientStatus.ACTIVE, True, stories.ANXIOUS_TAPER),
    ("Kim D.", "America/New_York", ["alcohol"], PatientStatus.DISCHARGED, True, stories.DISCHARGED),
    ("Lee F.", "America/Los_Angeles", ["cannabis", "other"], PatientStatus.ACTIVE, False, None),
]
SEED = 20261128


class _Request:
    """What the services read off a request, for writes made outside one."""

    META = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "seed_demo"}


def demo_logins() -> list[tuple[str, str, str]]:
    return [
        ("clinician", DEMO_CLINICIAN[0], DEMO_CLINICIAN[1]),
        ("clinic admin", DEMO_ADMIN[0], DEMO_ADMIN[1]),
        ("patient", "patient1@demo.interlude.test", DEMO_PATIENT_PASSWORD),
    ]


DEMO_HASH_ITERATIONS = 1000


class Command(BaseCommand):
    help = "Seed the demo clinic (skipped when it already exists)."

    def handle(self, *args, **options):
        if Clinic.objects.filter(name=DEMO_CLINIC).exists():
            self.stdout.write("Demo clinic already seeded.")
            return
        # The demo passwords are printed on the console, so hashing them at full strength only slows
        # the first `make run`. PBKDF2 reads the iteration count from the stored hash and Django
        # re-hashes at full strength on the first sign-in.
        with transaction.atomic(), patch.object(PBKDF2PasswordHasher, "iterations", DEMO_HASH_ITERATIONS):
            entries = self._seed(random.Random(SEED))
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {DEMO_CLINIC} with {len(DEMO_PATIENTS)} patients and {entries} journal entries."
            )
        )

    def _seed(self, rng: random.Random) -> int:
        clinician = clinician_create(
            email=DEMO_CLINICIAN[0], password=DEMO_CLINICIAN[1], clinic_name=DEMO_CLINIC, display_name=DEMO_CLINICIAN[2]
        )
        colleague = clinician_create(
            email=DEMO_COLLEAGUE[0], password=DEMO_COLLEAGUE[1], clinic_name=DEMO_CLINIC, display_name=DEMO_COLLEAGUE[2]
        )
        admin = clinician_create(
            email=DEMO_ADMIN[0],
            password=DEMO_ADMIN[1],
            clinic_name=DEMO_CLINIC,
            is_clinic_admin=True,
            display_name=DEMO_ADMIN[2],
        )
        consent = clinician.clinic.current_consent()
        histories = []
        for number, (name, zone, substances, status, enrolled, story) in enumerate(DEMO_PATIENTS, start=1):
            patient, code, _ = patient_create(
                clinician=clinician, display_name=name, timezone_name=zone, substances=substances
            )
            if rng.random() < 0.4:
                care_team_add(patient=patient, clinician=colleague, added_by=admin)
            if enrolled:
                patient_enroll(
                    code=code,
                    email=f"patient{number}@demo.interlude.test",
                    password=DEMO_PATIENT_PASSWORD,
                    consent_version=consent.version,
                    request=_Request(),
                )
            if status != PatientStatus.ACTIVE:
                patient.status = status
                patient.save(update_fields=["status"])
            if story is not None:
                histories.append((patient, story))
        now = timezone.now()
        entries = stories.demo_histories_create(histories=histories, clinician=clinician, now=now, seed=str(SEED))
        demo_reminders.demo_reminders_create(histories=histories, clinician=clinician, now=now, seed=str(SEED))
        demo_alerts.demo_alerts_create(histories=histories, clinician=clinician, now=now, seed=str(SEED))
        return entries
