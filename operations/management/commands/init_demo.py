import argparse
import os
import secrets
import sys

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db.models import Count

from companies.models import Company
from customers.models import Customer
from duplicates import services as duplicates
from duplicates.models import Kind
from operations.demo import bring_to_today, create_demo_users
from operations.demo_tasks import create_demo_tasks, demo_assignee
from tasks.models import Task

# Listening on every interface: this machine answers on its loopback address.
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]"}


def _port(value):
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1-65535).")
    return port


def server_url(host, port):
    """The address to open in a browser for a server listening on ``host:port``."""
    host = _WILDCARD_HOSTS.get(host, host) or "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address, as URLs write it
    return f"http://{host}:{port}"


def _python():
    """The Python running this command (the virtualenv's), as the user would type it here."""
    executable = sys.executable or "python"
    relative = os.path.relpath(executable)
    return relative if not relative.startswith("..") else executable


class Command(BaseCommand):
    help = (
        "Make an empty database ready to try. When there are no users: create an 'admin' superuser and, "
        "when there are no customers or companies either, a demo manager ('manager') and two demo reps ('rep', "
        "'rep2'), with generated passwords, printed once. When there are no customers or companies: load the "
        "'demo' fixture and bring it to today (interactions "
        "over the last three months, deals closing this month and next (one gone stale), overdue, today's and upcoming "
        "tasks, a few notifications; every company and person owned by a demo rep). Running it again "
        "changes nothing. --host and --port only say where the server will listen, for the address "
        "printed with the passwords."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="Name of the superuser to create (default: admin).")
        parser.add_argument(
            "--no-demo-data", action="store_true", help="Create the admin account only (no demo data or accounts)."
        )
        parser.add_argument(
            "--host", default="127.0.0.1", help="Host the server listens on (default: 127.0.0.1; make run passes HOST)."
        )
        parser.add_argument(
            "--port", type=_port, default=8000, help="Port the server listens on (default: 8000; make run passes PORT)."
        )

    def handle(self, *args, username, no_demo_data, host, port, **options):
        User = get_user_model()
        accounts = []
        # The demo's accounts come with the demo's data: a database holding customers or companies of its
        # own (brought over from the original CRM, say) gets its admin only (the fixture's ids are theirs).
        demo = not no_demo_data and not Customer.objects.exists() and not Company.objects.exists()
        if not User.objects.exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            accounts.append(("admin", username, password))
            if demo:
                accounts += create_demo_users()

        if demo:
            call_command("loaddata", "demo", verbosity=0)
            bring_to_today()
            # Keyed for the duplicate checks at once (a create's hint finds them), not after the first night.
            for kind in Kind:
                duplicates.rebuild(kind)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Loaded demo data: {Customer.objects.count()} customers at {Company.objects.count()} "
                    f"companies, dated around today."
                )
            )
            self._demo_tasks()

        url = server_url(host, port)
        if not accounts:
            self.stdout.write(f"Users exist already; no account created. Log in at {url}/admin/")
            return
        line = "=" * 64
        width = max(len("username"), *(len(name) for _, name, _ in accounts))
        rows = "\n".join(
            [
                f"    {'role':<8} {'username':<{width}}",
                *(f"    {role:<8} {name:<{width}}  password: {secret}" for role, name, secret in accounts),
            ]
        )
        first_name, first_password = accounts[0][1], accounts[0][2]
        self.stdout.write(
            f"{line}\n"
            f"Created these accounts (passwords shown only this once):\n"
            f"{rows}\n"
            f"Log in at {url}/admin/ or get an API token with\n"
            f"    curl -X POST {url}/api/auth/token \\\n"
            f"      -H 'Content-Type: application/json' \\\n"
            f'      -d \'{{"username": "{first_name}", "password": "{first_password}"}}\'\n'
            f"Forgot one? {_python()} manage.py changepassword USERNAME\n"
            f"{line}"
        )

    def _demo_tasks(self):
        """Tasks around today for the admin too (the fixture's dates are fixed; these move with today), beside
        the reps' own (``bring_to_today``); says how many each has."""
        assignee = demo_assignee()
        if assignee is not None and not Task.objects.filter(assignee=assignee).exists():
            create_demo_tasks(Customer.objects.order_by("pk")[:12], assignee)
        counts = Task.objects.values_list("assignee__username").annotate(count=Count("pk")).order_by("assignee_id")
        if counts:
            self.stdout.write(
                "Added demo tasks around today: " + ", ".join(f"{count} for {name}" for name, count in counts) + "."
            )
