"""The production settings, checked the way an operator starts them: in a fresh process."""

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings


def manage(*args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k not in ("DATABASE_URL",)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "crm_site.settings.production", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def deploy_check(**env):
    return manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **{"DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_ALLOWED_HOSTS": "crm.example.com", **env},
    )


def test_production_settings_pass_the_deploy_check_without_warnings():
    result = deploy_check()

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_behind_a_tls_proxy_also_passes():
    result = deploy_check(DJANGO_SECURE_PROXY_SSL_HEADER="true")

    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_check_would_catch_a_weak_configuration():
    result = deploy_check(DJANGO_SECRET_KEY="short", DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_DEBUG="true")

    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG
    assert "security.W008" in result.stderr  # no SSL redirect
    assert "security.W009" in result.stderr  # weak key


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", DJANGO_ALLOWED_HOSTS="crm.example.com")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_a_malformed_rate_limit_stops_the_start_instead_of_failing_every_request():
    result = deploy_check(DJANGO_THROTTLE_USER="1200 per minute")

    assert result.returncode != 0
    assert "DJANGO_THROTTLE_USER must be a rate such as 1200/minute" in result.stderr
    assert deploy_check(DJANGO_THROTTLE_LOGIN="5/hour").returncode == 0


@pytest.mark.parametrize("value", ["lead=²", "lead=0", "won=3", "lead"])
def test_malformed_stale_days_stop_the_start_with_the_reason(value):
    result = deploy_check(CRM_STALE_DAYS=value)

    assert result.returncode != 0
    assert "CRM_STALE_DAYS: expected stage=days pairs" in result.stderr, result.stderr


def test_production_serves_static_files_through_whitenoise():
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.MIDDLEWARE.index('whitenoise.middleware.WhiteNoiseMiddleware'),"
        " settings.MIDDLEWARE.index('django.middleware.security.SecurityMiddleware'),"
        " settings.STORAGES['staticfiles']['BACKEND'])",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
    )

    assert result.returncode == 0, result.stderr
    whitenoise_at, security_at, storage = result.stdout.split()[-3:]
    assert int(whitenoise_at) == int(security_at) + 1
    assert storage == "whitenoise.storage.CompressedManifestStaticFilesStorage"


SQLITE_PRAGMAS = (
    "from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    "    print(*(cursor.execute(f'PRAGMA {name}').fetchone()[0] for name in ('journal_mode', 'synchronous')))\n"
)


def sqlite_pragmas(tmp_path, **env):
    """``journal_mode`` and ``synchronous`` as the production settings' own database connection reads them."""
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        SQLITE_PRAGMAS,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=f"sqlite:///{tmp_path / 'crm.db'}",
        **env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()[-2:]


def test_sqlite_syncs_every_commit_by_default_so_an_acknowledged_write_survives_a_power_cut(tmp_path):
    # synchronous: 2 is FULL, 1 is NORMAL.
    assert sqlite_pragmas(tmp_path) == ["wal", "2"]


@pytest.mark.parametrize("value", ["NORMAL", "normal", " Normal "])
def test_an_operator_may_trade_durability_for_write_speed_with_normal(tmp_path, value):
    assert sqlite_pragmas(tmp_path, DJANGO_SQLITE_SYNCHRONOUS=value) == ["wal", "1"]


@pytest.mark.parametrize("value", ["OFF", "EXTRA", "2", "fast"])
def test_an_unknown_sqlite_synchronous_level_stops_the_start(value):
    result = deploy_check(DJANGO_SQLITE_SYNCHRONOUS=value)

    assert result.returncode != 0
    assert "DJANGO_SQLITE_SYNCHRONOUS must be FULL" in result.stderr
    assert repr(value) in result.stderr


def test_the_database_checks_of_a_sqlite_install_raise_nothing(tmp_path):
    # migrate runs them: a new install's first command must not warn about the PostgreSQL covering indexes.
    result = manage(
        "check",
        "--database",
        "default",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="crm.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'crm.db'}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "W040" not in result.stdout + result.stderr
