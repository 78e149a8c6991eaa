"""PostgreSQL restarted under writes (issue 7): while it is down the API answers 503 in the error
shape with Retry-After (never a 500, never a dropped connection); when it is back the same
gunicorn workers recover without a restart; every entry a phone was told was accepted is stored."""

import time

import psycopg
import pytest

from tests.faults.conftest import Phone, app_env, request, run_manage, seed_patients, sign_in
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
    phone = Phone(base, sign_in(base, seed_patients(env)[0]))
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


def _stored(database, ids: list[str]) -> int:
    with psycopg.connect(database.url("interlude").replace("postgres://", "postgresql://")) as conn:
        return conn.execute("SELECT count(*) FROM journal_entry WHERE id = ANY(%s::uuid[])", [ids]).fetchone()[0]


def test_a_crowd_of_phones_rides_out_a_database_restart(database, gunicorn_for):
    """Eight phones writing at once: some writes are in flight when the connections are cut. Each
    gets a 201 or a 503, never anything else; every 201 is stored; every phone is served again."""
    env = app_env(database_url=database.url("interlude"), redis_url="redis://127.0.0.1:6379/11")
    run_manage(env, "migrate", "--noinput")
    base = gunicorn_for(env)
    phones = [Phone(base, sign_in(base, email)) for email in seed_patients(env, 8)]
    for phone in phones:
        phone.start(pause=0.05)
    wait_until(lambda: all(len(phone.accepted()) >= 5 for phone in phones))

    database.stop("fast")
    stopped = time.monotonic()
    wait_until(lambda: all(sum(1 for a in phone.answers if a[4] > stopped) >= 5 for phone in phones))
    restarting = time.monotonic()
    database.start()
    wait_until(
        lambda: all(any(a[1] == 201 and a[4] > restarting for a in phone.answers) for phone in phones), timeout=30
    )
    for phone in phones:
        phone.stop()

    answers = [answer for phone in phones for answer in phone.answers]
    assert {answer[1] for answer in answers} <= {201, 503}, sorted({answer[1] for answer in answers})
    during = [answer for answer in answers if answer[4] > stopped and answer[5] < restarting]
    assert len(during) >= 40 and {answer[1] for answer in during} == {503}
    assert all(phone.answers[-1][1] == 201 for phone in phones)  # each served again, same workers
    accepted = [entry_id for phone in phones for entry_id in phone.accepted()]
    assert _stored(database, accepted) == len(accepted)
