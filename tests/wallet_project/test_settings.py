"""The production guard: `manage.py check --deploy` refuses an unsafe configuration, passes a good one."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "".join(
    secrets.choice(string.ascii_letters + string.digits + "!@#%^&*(-_=+)") for _ in range(60)
)


def _check(*flags: str, **overrides: str | None) -> subprocess.CompletedProcess:
    """Run `manage.py check` in production mode with `overrides` in the environment."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SECURE_", "CORS_"))
    }
    env.update(
        {
            "DJANGO_ENV": "production",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": GOOD_KEY,
            "DJANGO_ALLOWED_HOSTS": "example.com",
        }
    )
    env.update(overrides)
    env = {key: value for key, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, "manage.py", "check", *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _without(name: str) -> dict:
    return {name: None}


def test_a_good_production_configuration_passes_check_deploy_without_warnings():
    # when
    result = _check("--deploy")
    # then
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output
    assert "WARNING" not in output.upper()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG must be off"),
        (_without("DJANGO_SECRET_KEY"), "DJANGO_SECRET_KEY"),
        (
            {"DJANGO_SECRET_KEY": "django-insecure-development-only-key-change-me"},
            "DJANGO_SECRET_KEY",
        ),
        ({"DJANGO_SECRET_KEY": "too-short-but-random-9f8e7d"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS"),
        (_without("DJANGO_ALLOWED_HOSTS"), "DJANGO_ALLOWED_HOSTS"),
    ],
    ids=[
        "debug-on",
        "no-secret-key",
        "default-secret-key",
        "short-secret-key",
        "empty-allowed-hosts",
        "no-allowed-hosts",
    ],
)
def test_production_refuses_to_start_with_an_unsafe_setting(overrides, message):
    # when
    result = _check("--deploy", **overrides)
    # then
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line
    assert message in last_line


def test_development_defaults_start_without_any_environment():
    # when
    result = _check(DJANGO_ENV="development", DJANGO_SECRET_KEY=None, DJANGO_ALLOWED_HOSTS=None)
    # then
    assert result.returncode == 0, result.stderr
