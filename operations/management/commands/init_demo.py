import argparse
import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from customers.models import Customer
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


class Command(BaseCommand):
    help = (
        "Make an empty database ready to try: load the 'demo' fixture when there are no "
        "customers, and create an 'admin' superuser with a generated password (printed once) "
        "when there are no users. Does nothing on a database that already has data. --host and "
        "--port only say where the server will listen, for the address printed with the password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="Name of the superuser to create (default: admin).")
        parser.add_argument("--no-demo-data", action="store_true", help="Create the admin account only.")
        parser.add_argument(
            "--host", default="127.0.0.1", help="Host the server listens on (default: 127.0.0.1; make run passes HOST)."
        )
        parser.add_argument(
            "--port", type=_port, default=8000, help="Port the server listens on (default: 8000; make run passes PORT)."
        )

    def handle(self, *args, username, no_demo_data, host, port, **options):
        loaded = False
        if not no_demo_data and not Customer.objects.exists():
            call_command("loaddata", "demo", verbosity=0)
            loaded = True
            self.stdout.write(self.style.SUCCESS(f"Loaded demo data: {Customer.objects.count()} customers."))

        User = get_user_model()
        if User.objects.exists():
            self.stdout.write("Users exist already; no account created.")
            self._demo_tasks(loaded)
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self._demo_tasks(loaded)
        url = server_url(host, port)
        line = "=" * 64
        self.stdout.write(
            f"{line}\n"
            f"Created the superuser account (shown only this once):\n"
            f"    username: {username}\n"
            f"    password: {password}\n"
            f"Log in at {url}/admin/ or get an API token with\n"
            f"    curl -X POST {url}/api/auth/token \\\n"
            f"      -H 'Content-Type: application/json' \\\n"
            f'      -d \'{{"username": "{username}", "password": "{password}"}}\'\n'
            f"Forgot it? python manage.py changepassword {username}\n"
            f"{line}"
        )

    def _demo_tasks(self, loaded):
        """Tasks around today on the demo customers (the fixture's dates are fixed; these move with today)."""
        assignee = demo_assignee()
        if not loaded or assignee is None or Task.objects.exists():
            return
        count = create_demo_tasks(Customer.objects.order_by("pk")[:12], assignee)
        self.stdout.write(f"Added {count} demo tasks around today for {assignee.get_username()}.")
