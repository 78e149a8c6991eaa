"""PostgreSQL restarted under writes (issue 7): while it is down the API answers 503 in the error
shape with Retry-After (never a 500, never a dropped connection); when it is back the same
gunicorn workers recover without a restart; every entry a phone was told was accepted is stored."""

import time

import psycopg
import pytest

from tests.faults.conftest import Phone, app_env, request, run_manage, seed_patient, sign_in
from tests.support.postgres_server import PrivatePostgres, wait_until

pytestmark = pytest.mark.faults


@pytest.fixture
def database():
    server = PrivatePostgres()
    server.start()
    server.createdb("interlude")
    yield server
    server.destroy()


def test_a_database_restart_is_503s_then_recovery_with_no_acknowledged_write_lost(database, gunicorn_for):
    env = app_env(database_url=database.url("interlude"), redis_url="redis://127.0.0.1:6379/11")
    run_manage(env, "migrate", "--noinput")
    base = gunicorn_for(env)
    phone = Phone(base, sign_in(base, seed_patient(env)))
    phone.start()
    wait_until(lambda: len(phone.accepted()) >= 20)

    database.stop("fast")  # a restart or failover: every open connection is cut
    stopped = time.monotonic()
    wait_until(lambda: sum(1 for answer in phone.answers if answer[4] > stopped) >= 20)
    status, ready = request(base, "GET", "/readyz")
    assert status == 503 and ready["database"] is False
    restarting = time.monotonic()
    database.start()
    wait_until(lambda: any(answer[1] == 201 and answer[4] > restarting for answer in phone.answers), timeout=30)
    time.sleep(0.5)
    phone.stop()

    statuses = [answer[1] for answer in phone.answers]
    # Sent after the database was gone and answered before it was started again: all 503s.
    during = [(answer[1], answer[3]) for answer in phone.answers if answer[4] > stopped and answer[5] < restarting]
    assert len(during) >= 20
    assert {status for status, _ in during} == {503}, during[:3]
    assert all(body["error"]["code"] == "unavailable" for _, body in during)
    assert all(body["_headers"].get("Retry-After") for _, body in during)
    assert set(statuses) <= {201, 503}, sorted(set(statuses))
    assert statuses[-1] == 201  # recovered, same workers
    accepted = phone.accepted()
    with psycopg.connect(database.url("interlude").replace("postgres://", "postgresql://")) as conn:
        stored = conn.execute("SELECT count(*) FROM journal_entry WHERE id = ANY(%s::uuid[])", [accepted]).fetchone()
    assert stored[0] == len(accepted)
