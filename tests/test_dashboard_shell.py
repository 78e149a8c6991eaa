import pytest
from django.test import Client

from tests.factories import PASSWORD


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_sign_in():
    response = Client().get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login/")


@pytest.mark.django_db
def test_clinician_signs_in_and_sees_only_their_care_team(cast):
    client = Client()
    response = client.post("/dashboard/login/", {"username": cast.clinician.email, "password": PASSWORD})
    assert response.status_code == 302
    page = client.get("/dashboard/").content.decode()
    assert cast.patient.display_name in page
    assert cast.other_patient.display_name not in page
