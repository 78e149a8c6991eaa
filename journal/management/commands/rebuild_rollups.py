import time

from django.core.management.base import BaseCommand

from journal.services.rollups import rollups_rebuild


class Command(BaseCommand):
    help = "Recomputes every daily rollup from the entries (after a bulk load, or to prove they are exact)."

    def add_arguments(self, parser):
        parser.add_argument("--patient", action="append", default=None, help="only this patient id (repeatable)")

    def handle(self, *args, patient=None, **options):
        started = time.monotonic()
        rows = rollups_rebuild(patient_ids=patient)
        self.stdout.write(f"rebuilt {rows} daily rollups in {time.monotonic() - started:.1f} s")
