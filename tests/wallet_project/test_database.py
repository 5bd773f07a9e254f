"""Database connection settings: statements repeated on a connection are prepared on the server."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_a_statement_run_repeatedly_is_prepared_on_the_server():
    # given
    sql = "SELECT count(*) FROM users WHERE id > %s"
    # when
    with connection.cursor() as cursor:
        for n in range(6):
            cursor.execute(sql, [n])
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["SELECT count(*) FROM users WHERE id > $1%"],
        )
        prepared = cursor.fetchone()[0]
    # then
    assert prepared == 1


@pytest.mark.parametrize(("value", "expected"), [("none", "None"), ("", "None"), ("3", "3")])
def test_the_prepare_threshold_comes_from_the_environment(value, expected):
    # when
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.DATABASES['default']['OPTIONS']['prepare_threshold'])",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "wallet_project.settings",
            "DATABASE_PREPARE_THRESHOLD": value,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected
