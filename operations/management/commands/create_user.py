"""``manage.py create_user USERNAME --role rep|manager|read_only``: a staff account with a CRM role."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from core.access import ROLE_GROUPS


class Command(BaseCommand):
    help = (
        "Create a user with a CRM role: rep (sees and edits the customers they own), manager (sees and "
        "reassigns everything) or read_only (sees everything, changes nothing). The user may sign in to "
        "the admin and ask the API for a token. Without --password, a password is generated and printed "
        "once: hand it over and have it changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=sorted(ROLE_GROUPS), help="The user's role.")
        parser.add_argument("--email", default="", help="Email address (optional).")
        parser.add_argument(
            "--password",
            help="Password; generated and printed when left out. A given one must pass the password validators "
            "(AUTH_PASSWORD_VALIDATORS: long enough, not common, not all digits, not like the username or email).",
        )

    def handle(self, *args, **options):
        User = get_user_model()
        username = options["username"].strip()
        if not username:
            raise CommandError("The username may not be blank.")
        taken = User.objects.filter(username__iexact=username).values_list("username", flat=True).first()
        if taken is not None:
            # Names differing in case alone would be two accounts that people take for one.
            raise CommandError(f'A user named "{taken}" already exists.')
        # The rules of the user's fields (the admin's and createsuperuser's): length, characters, address.
        try:
            User(username=username, email=options["email"]).clean_fields(exclude=["password"])
        except ValidationError as exc:
            reasons = [f"{field}: {message}" for field, messages in exc.message_dict.items() for message in messages]
            raise CommandError("The user was refused:\n- " + "\n- ".join(reasons)) from None
        password = options["password"]
        generated = password is None
        if generated:
            password = secrets.token_urlsafe(12)
        else:
            # The validators judge the password against the user it is for (name, email).
            try:
                validate_password(password, User(username=username, email=options["email"]))
            except ValidationError as exc:
                raise CommandError("The password was refused:\n- " + "\n- ".join(exc.messages)) from None
        try:
            with transaction.atomic():
                user = User.objects.create_user(username, email=options["email"], password=password, is_staff=True)
                user.groups.add(Group.objects.get(name=ROLE_GROUPS[options["role"]]))
        except IntegrityError:
            # Created by another run meanwhile, between the check above and this insert.
            raise CommandError(f'A user named "{username}" already exists.') from None
        self.stdout.write(self.style.SUCCESS(f'Created {options["role"]} "{username}" (id {user.pk}).'))
        if generated:
            self.stdout.write(f"Password (shown only now): {password}")
