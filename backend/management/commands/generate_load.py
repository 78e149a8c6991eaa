"""A large, realistic clinic for benchmarks, written with COPY (backend/loadgen.py): PostgreSQL only."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import Clinic
from backend import loadgen


class Command(BaseCommand):
    help = (
        "Create the 'Load Clinic': N patients with a year of journal entries, weekly PHQ-9/GAD-7, therapy "
        "sessions and optionally a minute's burst of due prompts. PostgreSQL only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=1000)
        parser.add_argument("--days", type=int, default=365, help="journal days of history, ending today")
        parser.add_argument("--entries-per-day", type=float, default=4.0)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--prompts-due", type=int, default=0, help="scheduled prompts due within one minute")
        parser.add_argument("--prompts-due-at", help="ISO 8601 instant with offset: the start of that minute")
        parser.add_argument(
            "--replace", action="store_true", help="delete an existing Load Clinic and everything it holds first"
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError(f"generate_load writes with PostgreSQL's COPY; this database is {connection.vendor}.")
        patients, days, prompts_due = options["patients"], options["days"], options["prompts_due"]
        if patients < 1 or days < 1 or options["entries_per_day"] < 0 or prompts_due < 0:
            raise CommandError("--patients and --days must be at least 1, the other counts not negative.")
        due_at = None
        if prompts_due:
            if not options["prompts_due_at"]:
                raise CommandError("--prompts-due needs --prompts-due-at (the start of the minute they fall in).")
            try:
                due_at = loadgen.due_at_parse(options["prompts_due_at"])
            except ValueError as exc:
                raise CommandError(f"--prompts-due-at: {exc}") from None
        existing = Clinic.objects.filter(name=loadgen.LOAD_CLINIC).first()
        if existing is not None and not options["replace"]:
            raise CommandError(f"'{loadgen.LOAD_CLINIC}' exists already; pass --replace to delete and recreate it.")

        with transaction.atomic():
            if existing is not None:
                self.stdout.write(f"deleting the existing {loadgen.LOAD_CLINIC} …")
                try:
                    with transaction.atomic():
                        loadgen.clinic_delete(existing.pk)
                except DatabaseError as exc:
                    raise CommandError(
                        f"could not delete the existing {loadgen.LOAD_CLINIC} ({exc}). The access log is append-only: "
                        "once someone has read its patients, drop and recreate the database instead."
                    ) from None
            result = loadgen.load_create(
                patients=patients,
                days=days,
                entries_per_day=options["entries_per_day"],
                seed=options["seed"],
                now=timezone.now(),
                prompts_due=prompts_due,
                prompts_due_at=due_at,
                progress=self.stdout.write,
            )
            self.stdout.write("committing …")
        loadgen.tables_analyze()
        self.stdout.write(
            self.style.SUCCESS(
                f"{loadgen.LOAD_CLINIC}: {result.patients:,} patients, {result.entries:,} entries "
                f"({result.notes:,} with a note), {result.assessments:,} assessments, {result.sessions:,} sessions, "
                f"{result.prompt_history:,} past check-in prompts, {result.prompts:,} due prompts "
                f"in {result.seconds:.1f} s."
            )
        )
        last_phone = loadgen.patient_email(min(loadgen.PATIENTS_WITH_PASSWORD, patients))
        self.stdout.write(
            f"Clinicians (password {loadgen.CLINICIAN_PASSWORD}): {loadgen.LARGE_CLINICIAN} (every patient), "
            f"{loadgen.SMALL_CLINICIAN} (the first {min(loadgen.SMALL_CARE_TEAM, patients)}), "
            f"{loadgen.ADMIN} (clinic admin).\n"
            f"Patients {loadgen.patient_email(1)} … {last_phone}"
            f" sign in with {loadgen.PATIENT_PASSWORD}."
        )
