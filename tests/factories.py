import factory
from django.utils import timezone

from accounts.models import CareTeamMembership, Clinic, ConsentVersion, Patient, Role, User

PASSWORD = "a-long-test-passphrase"


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Clinic {n}")

    @factory.post_generation
    def consent(self, create, extracted, **kwargs):
        if create:
            ConsentVersion.objects.create(clinic=self, version="1", text="Consent text v1", published_at=timezone.now())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    clinic = factory.SubFactory(ClinicFactory)
    role = Role.CLINICIAN
    display_name = factory.Faker("name")

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])


class ClinicianFactory(UserFactory):
    role = Role.CLINICIAN


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    display_name = factory.Faker("first_name")
    timezone = "America/New_York"
    substances = ["alcohol"]


def enrolled_patient(clinic: Clinic, **fields) -> Patient:
    user = UserFactory(clinic=clinic, role=Role.PATIENT)
    return PatientFactory(clinic=clinic, user=user, **fields)


def care_team_add(patient: Patient, clinician: User) -> None:
    CareTeamMembership.objects.create(patient=patient, clinician=clinician)
