"""schemathesis against gunicorn with a real token: every operation, every check, zero failures.

Deterministic for CI: a fixed seed per database (CI runs the suite on both), each with a
bounded number of examples per operation, so that a rule that holds for one seed's data and
not for another's shows here rather than on the next change. docs/api.md shows the longer run
to do locally. Settings beyond these (expected statuses) are in schemathesis.toml at
the top of the repository.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live.conftest import ROOT, _is_postgres, create_tokens

pytestmark = pytest.mark.live

# One fixed seed per database, so that CI's two passes (SQLite, then PostgreSQL) try two sets of data;
# SCHEMATHESIS_SEEDS="1,2,3" (or SCHEMATHESIS_SEED=1 for one) runs others, as docs/api.md shows.
DEFAULT_SEED = "20261205" if _is_postgres(os.environ.get("DATABASE_URL", "")) else "20261124"
SEEDS = (os.environ.get("SCHEMATHESIS_SEEDS") or os.environ.get("SCHEMATHESIS_SEED") or DEFAULT_SEED).split(",")
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20")


def run_schemathesis(server, token, *args, seed=SEEDS[0]):
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{server.url}/api/schema/?format=json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--seed",
        seed,
        "--max-examples",
        MAX_EXAMPLES,
        # One worker thread: hypothesis parses source with ``ast`` as it goes, and CPython 3.11's
        # parser can fail in concurrent threads ("SystemError: AST constructor recursion depth
        # mismatch", CPython gh-106905), which ends a run whose every case passed.
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        *args,
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    return output


@pytest.mark.parametrize("seed", [seed.strip() for seed in SEEDS])
def test_every_operation_conforms_to_the_schema(gunicorn_server, seed):
    token = create_tokens(gunicorn_server.database_url, [f"fuzzer-{seed}"])[f"fuzzer-{seed}"]

    # Logging out revokes the token the run uses: that operation gets its own run below.
    output = run_schemathesis(gunicorn_server, token, "--exclude-operation-id", "auth_logout_create", seed=seed)

    assert "failures" not in output.splitlines()[-1]
    operations = sum(
        1
        for item in gunicorn_server.client()
        .get(f"{gunicorn_server.url}/api/schema/?format=json")
        .json()["paths"]
        .values()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )
    # Every operation but logout was exercised.
    assert f"Tested: {operations - 1}" in output


def test_logout_conforms_to_the_schema(gunicorn_server):
    token = create_tokens(gunicorn_server.database_url, ["fuzzer-logout"])["fuzzer-logout"]

    output = run_schemathesis(gunicorn_server, token, "--include-operation-id", "auth_logout_create")

    assert "Tested: 1" in output
