from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import ValidationError

from accounts.services import clinician_create


class Command(BaseCommand):
    help = "Create a clinician (and the clinic, if it does not exist yet)."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--clinic", required=True, help="Clinic name; created if needed.")
        parser.add_argument("--admin", action="store_true", help="Make them a clinic admin.")
        parser.add_argument("--name", default="", help="Display name.")

    def handle(self, *args, **options):
        try:
            user = clinician_create(
                email=options["email"],
                password=options["password"],
                clinic_name=options["clinic"],
                is_clinic_admin=options["admin"],
                display_name=options["name"],
            )
        except ValidationError as exc:
            raise CommandError(str(exc.detail)) from None
        role = "clinic admin" if user.is_clinic_admin else "clinician"
        self.stdout.write(self.style.SUCCESS(f"Created {role} {user.email} in {user.clinic.name}."))
