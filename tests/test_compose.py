"""The deployment files (SPEC §2): docker-compose.yml, Dockerfile and .dockerignore.

There is no Docker engine here, so these read the files as data and check the properties that
matter in production: one Django definition reused everywhere, exactly one beat, the urgent queue
consumed, health checks, persistent volumes and a non-root image.
"""

import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

DJANGO_SERVICES = ("web", "worker", "beat")
# beat is the container's only process: if it dies the container restarts; /readyz reports its age.
SERVICES_WITHOUT_HEALTHCHECK = {"beat"}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _services() -> dict:
    return _compose()["services"]


def _command(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _option_values(tokens: list[str], *names: str) -> list[str]:
    values = []
    for index, token in enumerate(tokens):
        for name in names:
            if token == name and index + 1 < len(tokens):
                values.append(tokens[index + 1])
            elif token.startswith(name + "="):
                values.append(token.split("=", 1)[1])
    return values


def _queues(service: dict) -> set[str]:
    values = _option_values(_command(service), "-Q", "--queues")
    return {queue.strip() for value in values for queue in value.split(",") if queue.strip()}


def _celery_workers(services: dict) -> dict:
    return {
        name: service
        for name, service in services.items()
        if _command(service)[:1] == ["celery"] and "worker" in _command(service)
    }


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _merge_value(mapping_node: yaml.MappingNode):
    for key, value in mapping_node.value:
        if key.value == "<<":
            return value
    return None


# --- compose: one Django definition -------------------------------------------------------------


def test_compose_defines_every_production_service():
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(_services())


def test_django_services_merge_the_one_django_anchor():
    # Parsed as nodes, an alias is the very same node object as its anchor: a copy-pasted block is not.
    root = yaml.compose(COMPOSE_FILE.read_text())
    top = {key.value: value for key, value in root.value}
    anchor = top["x-django"]
    services = {key.value: value for key, value in top["services"].value}
    for name in DJANGO_SERVICES:
        assert _merge_value(services[name]) is anchor, f"{name} does not merge <<: *django"


def test_django_services_share_build_image_and_environment():
    compose = _compose()
    services = compose["services"]
    django = compose["x-django"]
    assert django["build"] and django["image"] and django["environment"]
    for name in DJANGO_SERVICES:
        for key in ("build", "image", "environment"):
            assert services[name][key] == django[key], f"{name}.{key} differs from x-django"
    assert services["web"]["environment"] == services["worker"]["environment"] == services["beat"]["environment"]


def test_django_services_wait_for_healthy_postgres_and_redis():
    for name in DJANGO_SERVICES:
        depends_on = _services()[name]["depends_on"]
        for dependency in ("postgres", "redis"):
            assert depends_on[dependency]["condition"] == "service_healthy", f"{name} -> {dependency}"


def test_secrets_are_required_not_defaulted():
    environment = _compose()["x-django"]["environment"]
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS"):
        assert re.fullmatch(r"\$\{" + name + r":\?[^}]+\}", environment[name]), environment[name]


def test_django_environment_points_at_the_compose_services():
    environment = _compose()["x-django"]["environment"]
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert environment["REDIS_URL"].startswith("redis://redis:6379/")
    for name in ("ALLOWED_HOSTS", "PUBLIC_BASE_URL", "EMAIL_URL", "MIN_APP_VERSION", "FCM_PROJECT_ID"):
        assert name in environment
    assert "FCM_CREDENTIALS_FILE" in environment


def test_production_defaults_are_https_behind_one_proxy():
    environment = _compose()["x-django"]["environment"]
    assert environment["SECURE_SSL_REDIRECT"] == "${SECURE_SSL_REDIRECT:-true}"
    assert environment["TRUSTED_PROXY_COUNT"] in ("1", 1, "${TRUSTED_PROXY_COUNT:-1}")
    assert "EMBEDDED" not in environment
    assert environment.get("DEBUG", "false") in ("false", False)


# --- compose: processes -----------------------------------------------------------------------


def test_web_migrates_then_runs_gunicorn():
    command = " ".join(_command(_services()["web"]))
    assert "migrate --noinput" in command
    assert "gunicorn backend.wsgi" in command
    assert "0.0.0.0:8000" in command
    assert command.index("migrate") < command.index("gunicorn")


def test_web_healthcheck_asks_readyz_without_curl():
    test = _services()["web"]["healthcheck"]["test"]
    joined = " ".join(test) if isinstance(test, list) else test
    assert "curl" not in joined and "wget" not in joined
    assert "urllib" in joined
    assert "localhost:8000/readyz" in joined


def test_beat_runs_celery_beat():
    tokens = _command(_services()["beat"])
    assert tokens[0] == "celery"
    assert _option_values(tokens, "-A", "--app") == ["backend"]
    assert "beat" in tokens
    assert "worker" not in tokens


def test_beat_runs_exactly_one_replica():
    beat = _services()["beat"]
    assert beat["deploy"]["replicas"] == 1
    assert "scale" not in beat
    # A worker started with -B/--beat would be a second beat.
    others = [
        name
        for name, service in _services().items()
        if name != "beat" and {"beat", "-B", "--beat"} & set(_command(service))
    ]
    assert others == [], f"{others} also run beat"


def test_beat_schedule_file_lives_on_a_volume():
    beat = _services()["beat"]
    schedules = _option_values(_command(beat), "-s", "--schedule")
    assert len(schedules) == 1
    mounts = [volume.split(":")[1] for volume in beat["volumes"] if isinstance(volume, str)]
    assert any(schedules[0].startswith(mount.rstrip("/") + "/") for mount in mounts), (schedules, mounts)


def test_worker_consumes_the_urgent_alert_queue():
    assert "alerts_urgent" in _queues(_services()["worker"])


def test_every_celery_queue_has_a_worker():
    consumed = set().union(*(_queues(service) for service in _celery_workers(_services()).values()))
    defined = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert defined - consumed == set()


def test_dedicated_urgent_worker_consumes_only_urgent_alerts():
    urgent = _services().get("worker-urgent")
    if urgent is None:
        pytest.skip("no dedicated urgent worker in this compose file")
    assert _queues(urgent) == {"alerts_urgent"}
    assert urgent["environment"] == _compose()["x-django"]["environment"]


def test_every_service_has_a_healthcheck_except_beat():
    missing = [
        name
        for name, service in _services().items()
        if name not in SERVICES_WITHOUT_HEALTHCHECK and not (service.get("healthcheck") or {}).get("test")
    ]
    assert missing == []


def test_postgres_and_redis_keep_data_on_named_volumes():
    compose = _compose()
    named = set(compose["volumes"])
    expected = {"postgres": "/var/lib/postgresql/data", "redis": "/data"}
    for name, path in expected.items():
        mounts = dict(volume.split(":")[:2] for volume in compose["services"][name]["volumes"])
        assert path in mounts.values(), f"{name} has no volume at {path}"
        source = next(source for source, target in mounts.items() if target == path)
        assert source in named, f"{name} mounts {source}, not a named volume"


def test_redis_persists_queued_messages():
    command = _command(_services()["redis"])
    assert _option_values(command, "--appendonly") == ["yes"]


def test_postgres_and_redis_healthchecks_use_their_own_probes():
    services = _services()
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "ping" in " ".join(services["redis"]["healthcheck"]["test"])


# --- image --------------------------------------------------------------------------------------


def test_dockerfile_builds_from_python_311_slim():
    froms = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "FROM"]
    assert froms and froms[0].split()[0] == "python:3.11-slim"


def test_dockerfile_runs_gunicorn_by_default():
    cmds = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "CMD"]
    assert len(cmds) == 1
    assert "gunicorn" in cmds[0] and "backend.wsgi" in cmds[0] and "0.0.0.0:8000" in cmds[0]


def test_dockerfile_switches_to_a_non_root_user_before_cmd():
    instructions = _dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    users = [(index, arguments) for index, (keyword, arguments) in enumerate(instructions) if keyword == "USER"]
    assert users, "no USER instruction"
    last_index, last_user = users[-1]
    assert last_user.split(":")[0] not in ("root", "0")
    assert last_index < keywords.index("CMD")


def test_dockerfile_collects_static_files_without_baking_in_secrets():
    instructions = _dockerfile_instructions()
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert any("collectstatic" in run for run in runs)
    baked = " ".join(arguments for keyword, arguments in instructions if keyword in ("ENV", "ARG"))
    for name in ("SECRET_KEY", "DATABASE_URL", "FIELD_ENCRYPTION_KEYS", "EMBEDDED"):
        assert name not in baked, f"{name} is baked into the image"
    assert "HEALTHCHECK" not in [keyword for keyword, _ in instructions]


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    patterns = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()}
    for pattern in (".venv", "var", ".git", ".env"):
        assert pattern in patterns, pattern
    assert patterns & {"__pycache__", "**/__pycache__"}
