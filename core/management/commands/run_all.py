"""``manage.py run_all``: the development web server and one job worker, started and stopped together."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

# How long each process gets to finish after Ctrl-C before it is killed.
STOP_SECONDS = 10


def _die_with_parent():
    """In the child: be killed if the launcher dies without stopping us (Linux), so nothing is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Command(BaseCommand):
    help = (
        "Run the web server (runserver) and one job worker (manage.py worker) together, for development "
        "and small installs: `make run` uses it. Ctrl-C stops both; if either stops on its own, the other "
        "is stopped too and the command exits with its status. Production runs gunicorn and "
        "`manage.py worker` as separate processes instead (docs/deployment.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000", help="host:port to serve on")
        parser.add_argument("--noreload", action="store_true", help="do not restart the web server on code changes")

    def handle(self, *args, addrport, noreload, **options):
        # The children inherit DJANGO_SETTINGS_MODULE (manage.py or --settings set it) and the rest.
        manage = [sys.executable, "-m", "django"]
        commands = {
            "web server": [*manage, "runserver", addrport, *(["--noreload"] if noreload else [])],
            # Quiet: a line per job (several a minute) would push what init_demo printed (the demo
            # accounts' passwords, shown once) out of the terminal.
            "worker": [*manage, "worker", "--quiet-jobs"],
        }
        processes = {}
        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        status = 0
        try:
            for name, command in commands.items():
                # A session of its own: Ctrl-C reaches this command only, which stops each
                # process group (runserver's reloader child included) in turn.
                processes[name] = subprocess.Popen(
                    command, env=_environment(name), start_new_session=True, preexec_fn=_die_with_parent
                )
                self.stdout.write(f"Started the {name} (pid {processes[name].pid}).")
            self.stdout.flush()
            while not stopping:
                ended = [name for name, process in processes.items() if process.poll() is not None]
                if ended:
                    status = processes[ended[0]].returncode or 0
                    self.stderr.write(f"The {ended[0]} stopped (status {status}); stopping the rest.")
                    break
                time.sleep(0.2)
        finally:
            for process in processes.values():
                _stop(process)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if status:
            raise SystemExit(status)


def _environment(name):
    """The child's environment: this command's, and for the web server connections closed after each request
    unless ``DJANGO_CONN_MAX_AGE`` says otherwise. runserver answers each request in a thread of its own, so a
    connection kept for reuse is never reused: it stays open after its thread ends, and a burst of requests
    would hold one per request until PostgreSQL refuses more clients."""
    env = dict(os.environ)
    if name == "web server":
        env.setdefault("DJANGO_CONN_MAX_AGE", "0")
    return env


def _stop(process):
    """SIGINT to the process group, SIGKILL to whatever is left after STOP_SECONDS."""
    try:
        os.killpg(process.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    try:
        # Whatever is still in the group (a reloader's child) goes too.
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
