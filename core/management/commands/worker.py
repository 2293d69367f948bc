"""``manage.py worker``: runs the queued and periodic jobs (huey's consumer, with the CRM's defaults)."""

import logging

from django.conf import settings
from huey.contrib.djhuey.management.commands import run_huey


def _default_threads():
    return settings.HUEY.get("consumer", {}).get("workers", 1) if isinstance(settings.HUEY, dict) else 1


class Command(run_huey.Command):
    help = (
        "Run the job worker: the jobs web requests enqueue (event dispatch) and the periodic ones "
        "(the event sweep every minute, the daily purge of expired keys, tokens and events). "
        "Run one beside the web server (`make run` does) and as many as you like in production, "
        "on any machine that reaches the same database and queue: the queue is an SQLite file beside "
        "the database by default (CRM_QUEUE_FILE), Redis when REDIS_URL is set. Stop it with Ctrl-C "
        "(SIGINT): it finishes the jobs under way and exits. Examples: `manage.py worker`; "
        "`manage.py worker --workers 4`; `manage.py worker --no-periodic` for extra workers beside one "
        "that schedules the periodic jobs."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        threads = _default_threads()
        for action in parser._actions:
            if action.dest == "workers":
                action.help = f"threads running jobs in this process (default {threads}, from CRM_WORKER_THREADS)"
            elif action.dest == "periodic":
                action.help = (
                    "do not enqueue periodic jobs from this worker (it still runs them); "
                    "with several workers, one scheduling them is enough"
                )
        parser.add_argument(
            "--quiet-jobs",
            action="store_true",
            help="log no line per job run or scheduled, only warnings and errors (`manage.py run_all` passes it, "
            "so that the development server's terminal keeps what it printed last in view)",
        )

    def handle(self, *args, **options):
        from huey.contrib.djhuey import HUEY

        if HUEY.immediate:
            self.stderr.write(
                "The queue is in immediate mode (CRM_QUEUE_IMMEDIATE): jobs run inside the web process and "
                "a worker has nothing to do."
            )
            raise SystemExit(2)
        # huey's command gives the "huey" logger a handler of its own (with --logfile, --verbose, --quiet):
        # passed on to the root logger's handler too, every line would be printed twice.
        logging.getLogger("huey").propagate = False
        if options.pop("quiet_jobs"):
            options["verbose"] = False  # huey's --quiet: its logger at WARNING
            threads = options.get("workers") or _default_threads()
            self.stdout.write(f"Job worker started ({threads} threads); it logs only warnings and errors.")
            self.stdout.flush()
        super().handle(*args, **options)
