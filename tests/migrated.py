"""An SQLite file with every migration applied, made once per test session (``migrated_sqlite`` in
tests/conftest.py) and copied for each test that needs a database file of its own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

# A test that works on an SQLite file of its own (``migrated_sqlite``), whatever database the suite runs on:
# the SQLite pass runs it, and the PostgreSQL pass would compute exactly the same again. Skipped there,
# as the tests of two PostgreSQL connections at once are skipped on SQLite.
OWN_SQLITE_FILE = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "core.sqlite",
    reason="works on an SQLite file of its own: the SQLite pass runs it",
)


def migrated_template(path):
    """Migrate a new SQLite file at ``path`` in a subprocess, as an operator would, and return ``path``.

    The migrating process has closed its connection when it ends, so the file holds everything (no
    write-ahead log beside it) and a plain copy of it is a migrated database.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env.update({"DJANGO_SETTINGS_MODULE": "crm_site.settings.test", "DATABASE_URL": f"sqlite:///{path}"})
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not Path(f"{path}-wal").exists(), "the migrated file has a write-ahead log left beside it"
    return path
