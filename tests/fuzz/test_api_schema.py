"""Fuzzing the API from its own OpenAPI schema (schemathesis 4), signed in as a patient and as a
care-team clinician: zero 5xx, zero responses the schema does not describe.

Every operation runs three phases per role: the schema's examples, coverage (boundary and
schema-violating values, deterministic) and fuzzing (Hypothesis, derandomized), in both positive
and negative generation modes. The schema declares no OpenAPI links; schemathesis infers them from
the response and parameter names (an entry's `id` feeds `{entry_id}`), and the stateful test walks
those. All of schemathesis' response checks run except `positive_data_acceptance`: this API turns
schema-valid input down with a 400 on purpose where JSON Schema cannot say why (an unknown time
zone, an entry in the future, a used enrollment code, a wrong password).
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from django.core.cache import cache
from django.db import transaction
from hypothesis import HealthCheck, seed, settings
from schemathesis.core.parameters import ParameterLocation

from backend.wsgi import application

ROLES = ["patient", "clinician"]
# How this API turns a request down (SPEC §3): a bad If-Match is a 412, an oversized batch a 413, an
# old app a 426, and a throttled client gets 429 whatever it sent.
REJECTIONS = ["400", "401", "403", "404", "405", "409", "412", "413", "415", "426", "429"]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20260311,
        "generation": {"mode": "all", "max-examples": 10, "deterministic": True, "with-security-parameters": False},
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {"expected-statuses": REJECTIONS},
        },
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)

pytestmark = pytest.mark.django_db


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@pytest.mark.parametrize("role", ROLES)
# The world is built once per module; each test's writes are rolled back with its savepoint.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api(case, role, world, in_process_requests):
    if case.path_parameters and not (case.meta and case.meta.is_negative_at(ParameterLocation.PATH)):
        # A generated UUID names nothing, and most routes look the object up before they read the
        # body: aimed at the world's objects, the request reaches the code behind the 404.
        case.path_parameters = {name: world.ids.get(name, value) for name, value in case.path_parameters.items()}
    # call_and_validate raises on any failed schemathesis check; the SPEC's own promises on top:
    response = case.call_and_validate(headers=_bearer(world.tokens[role]))
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code)
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message"}, response.text


Workflow = schema.as_state_machine()


# Fixed seeds keep CI's verdict reproducible; several of them walk more sequences. To explore, run
# with other seeds added here. Seed 3 found the changes feed's tombstones missing from the schema
# (test_a_tombstone_in_the_changes_feed_matches_the_schema holds that fix on its own).
WALK_SEEDS = [1, 2, 3, 20260311]


@pytest.mark.parametrize("walk_seed", WALK_SEEDS)
@pytest.mark.parametrize("role", ROLES)
def test_stateful_workflows(role, walk_seed, world, in_process_requests):
    """Sequences of calls along the inferred links: what one answer returns, the next one uses."""
    headers = _bearer(world.tokens[role])

    class SignedIn(Workflow):
        def setup(self):
            # Each sequence starts from the same world: what an earlier sequence wrote would make a
            # replayed (shrunk) sequence draw from different answers and hide the failure found.
            self._savepoint = transaction.savepoint()
            cache.clear()

        def teardown(self):
            transaction.savepoint_rollback(self._savepoint)

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # Named as the request's own headers, the token counts as the caller's credentials
            # (ignored_auth then retries without it) rather than as generated data.
            case.validate_response(
                response, additional_checks=additional_checks, headers=kwargs["headers"], transport_kwargs=kwargs
            )

    seed(walk_seed)(SignedIn).run(
        settings=settings(
            max_examples=15,
            stateful_step_count=8,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


def test_a_tombstone_in_the_changes_feed_matches_the_schema(world, in_process_requests):
    headers = _bearer(world.tokens["patient"])
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    entry = {"id": str(uuid.uuid4()), "kind": "craving", "craving": 3, "occurred_at": an_hour_ago}
    created = schema["/api/v1/entries/"]["POST"].Case(body=entry).call(headers=headers)
    assert created.status_code in (200, 201), created.text
    deleted = schema["/api/v1/entries/{entry_id}/"]["DELETE"].Case(path_parameters={"entry_id": entry["id"]})
    assert deleted.call(headers=headers).status_code == 204
    changes = schema["/api/v1/entries/changes/"]["GET"].Case()
    response = changes.call(headers=headers)
    assert {"id": entry["id"], "deleted": True} in response.json()["results"]
    # Raises on a response the schema does not describe (the token named as the call's own, as above).
    changes.validate_response(response, headers=headers, transport_kwargs={"headers": headers})
