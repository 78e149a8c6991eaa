import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from backend.env import env_bool, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "PATH": os.environ["PATH"],
    "DJANGO_SETTINGS_MODULE": "backend.settings",
    "SECRET_KEY": "prod-" + "k3y" * 20 + "-0123456789abcdefghijklmnopqrstuvwxyz",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/interlude",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "ALLOWED_HOSTS": "interlude.example.org",
    "PUBLIC_BASE_URL": "https://interlude.example.org",
    "EMAIL_URL": "smtp://mail.example.org:587",
    "FIELD_ENCRYPTION_KEYS": "0a3nDGxYqrTrvJJibZgsrkc3uODGV08QkDhfDFwIeoU=",
}


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "DEBUG", env={**PRODUCTION_ENV, "VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "SECRET_KEY"}
    result = _manage("check", env={**env, "VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_production_refuses_to_start_without_a_database_url(tmp_path):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "DATABASE_URL"}
    result = _manage("check", env={**env, "VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "Set the DATABASE_URL environment variable" in result.stderr


def test_production_defaults_are_safe():
    from django.conf import settings

    # The test run is production-shaped except for the HTTPS redirect (the test client speaks HTTP).
    assert settings.DEBUG is False
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE
    assert settings.SECURE_HSTS_SECONDS >= 31536000


def test_env_helpers_fail_loudly(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env_bool("SOME_FLAG", False)
    monkeypatch.setenv("SOME_INT", "ten")
    with pytest.raises(ImproperlyConfigured, match="SOME_INT"):
        env_int("SOME_INT", 1)
    monkeypatch.delenv("NOT_SET", raising=False)
    with pytest.raises(ImproperlyConfigured, match="NOT_SET"):
        env_str("NOT_SET")
    monkeypatch.setenv("SOME_LIST", "a, b,,c")
    assert env_list("SOME_LIST", []) == ["a", "b", "c"]
    monkeypatch.setenv("SOME_FLAG", "Off")
    assert env_bool("SOME_FLAG", True) is False
