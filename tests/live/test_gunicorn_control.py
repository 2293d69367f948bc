"""gunicorn's control socket (``gunicornc``) belongs to one instance or does not exist.

Its default path is one per user and host: each new instance would take it over
and the first to stop would delete it under the others, so a command meant for
one server could reach another. Two servers are started at once here, with
HOME and XDG_RUNTIME_DIR (where that default lives) pointing at a temporary
folder, so that nothing outside the test is touched.
"""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.live.conftest import start_server

pytestmark = pytest.mark.live


@contextmanager
def two_servers_started_at_once(live_database_url, tmp_path, envs):
    """Two one-worker servers started at the same moment, and the folders of the default socket path.

    Both are stopped on the way out, whatever happened, including when only one came up.
    """
    home = tmp_path / "home"
    runtime = tmp_path / "runtime"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(
                start_server,
                live_database_url,
                tmp_path / f"gunicorn-{index}.log",
                workers=1,
                HOME=home,
                XDG_RUNTIME_DIR=runtime,
                **env,
            )
            for index, env in enumerate(envs)
        ]
        servers = []
        for future in futures:
            exception = future.exception()
            if exception is None:
                servers.append(future.result())
                stack.callback(servers[-1].stop)
        for future in futures:
            future.result()  # re-raises a start that failed, after the others are in the stack
        yield servers, [home, runtime]


def control_sockets_under(folders):
    return sorted(str(path) for folder in folders for path in folder.rglob("*") if path.is_socket())


def control_stats(socket_path):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gunicornc")), "-s", str(socket_path), "-c", "show stats", "-j"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_two_instances_started_at_once_open_no_shared_control_socket(live_database_url, tmp_path):
    with two_servers_started_at_once(live_database_url, tmp_path, [{}, {}]) as (servers, default_folders):
        assert control_sockets_under(default_folders) == []
        for server in servers:
            assert not [line for line in server.log_lines() if "Control socket" in line]


def test_each_instance_answers_on_its_own_control_socket_when_asked_for_one(live_database_url, tmp_path):
    paths = [tmp_path / "first.ctl", tmp_path / "second.ctl"]
    envs = [{"GUNICORN_CONTROL_SOCKET": path} for path in paths]
    with two_servers_started_at_once(live_database_url, tmp_path, envs) as (servers, default_folders):
        assert [control_stats(path)["pid"] for path in paths] == [server.process.pid for server in servers]
        assert control_sockets_under(default_folders) == []

        # Stopping one instance leaves the other's socket in place and answering.
        servers[0].stop()
        assert not paths[0].exists()
        assert control_stats(paths[1])["pid"] == servers[1].process.pid
