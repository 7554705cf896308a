"""Production posture: settings read from the environment, checked in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_missing_secret_key_with_debug_off_names_the_variable():
    result = run_manage("check", DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_migrations_can_be_checked_on_a_bare_checkout():
    """No key and debug off: `makemigrations --check` still answers (it signs nothing), and
    every model change has its migration."""
    result = run_manage("makemigrations", "--check", "--dry-run", DJANGO_DEBUG="0")
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_check_deploy_has_no_warnings():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_DEBUG="off", DJANGO_SECRET_KEY="x" * 20 + "a-long-random-production-key-1234567890",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.parametrize("word", ["maybe", "2"])
def test_unknown_debug_word_is_refused(word):
    result = run_manage("check", DJANGO_DEBUG=word)
    assert result.returncode != 0
    assert "DJANGO_DEBUG" in result.stderr


def test_sqlite_uses_wal_immediate_transactions_and_a_busy_timeout(tmp_path):
    """Without these, concurrent writers fail with "database is locked"."""
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; django.setup();"
        "from django.db import connection; c=connection.cursor();"
        "c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]);"
        "c.execute('PRAGMA busy_timeout'); print(c.fetchone()[0]);"
        "print(connection.settings_dict['OPTIONS']['transaction_mode'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
             "DJANGO_DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'wal.sqlite3'}"},
    )  # fmt: skip
    journal, busy, mode = result.stdout.split()
    assert journal == "wal"
    assert int(busy) >= 5000
    assert mode == "IMMEDIATE"


def test_postgres_url_selects_psycopg_with_health_checks():
    result = subprocess.run(
        [sys.executable, "-c",
         "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings';"
         "from django.conf import settings; d=settings.DATABASES['default'];"
         "print(d['ENGINE'], d['CONN_HEALTH_CHECKS'], d['HOST'], d['PORT'])"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
             "DJANGO_DEBUG": "1", "DATABASE_URL": "postgres://u:p@127.0.0.1:5499/debrief"},
    )  # fmt: skip
    assert result.stdout.split() == ["django.db.backends.postgresql", "True", "127.0.0.1", "5499"]


@pytest.mark.django_db
def test_postgresql_sessions_run_without_jit():
    """JIT compiling cost ≈450 ms on 5 ms visibility queries; the connection turns it off."""
    from django.db import connection

    if connection.vendor != "postgresql":
        assert "options" not in connection.settings_dict.get("OPTIONS", {})
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
