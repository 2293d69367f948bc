import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from customers.models import Customer


class Command(BaseCommand):
    help = (
        "Make an empty database ready to try: load the 'demo' fixture when there are no "
        "customers, and create an 'admin' superuser with a generated password (printed once) "
        "when there are no users. Does nothing on a database that already has data."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="Name of the superuser to create (default: admin).")
        parser.add_argument("--no-demo-data", action="store_true", help="Create the admin account only.")

    def handle(self, *args, username, no_demo_data, **options):
        if not no_demo_data and not Customer.objects.exists():
            call_command("loaddata", "demo", verbosity=0)
            self.stdout.write(self.style.SUCCESS(f"Loaded demo data: {Customer.objects.count()} customers."))

        User = get_user_model()
        if User.objects.exists():
            self.stdout.write("Users exist already; no account created.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        line = "=" * 64
        self.stdout.write(
            f"{line}\n"
            f"Created the superuser account (shown only this once):\n"
            f"    username: {username}\n"
            f"    password: {password}\n"
            f"Log in at http://127.0.0.1:8000/admin/ or get an API token with\n"
            f"    curl -X POST http://127.0.0.1:8000/api/auth/token \\\n"
            f"      -H 'Content-Type: application/json' \\\n"
            f'      -d \'{{"username": "{username}", "password": "{password}"}}\'\n'
            f"Forgot it? python manage.py changepassword {username}\n"
            f"{line}"
        )
