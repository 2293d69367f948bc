"""Django's ``loaddata``, giving the records it loads the "created" history entry raw saves skip,
and answering a fixture it cannot load with a one-line error (nothing of it is written)."""

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.management.commands import loaddata
from django.core.serializers.base import DeserializationError
from django.db import DatabaseError

from core.history import history_for_loaded_records


def _one_line(exc):
    message = str(exc).strip()
    cause = exc.__cause__ or exc.__context__
    if cause is not None and (not message or message.endswith(":")):
        message = f"{message} {cause}".strip()
    return " ".join(message.split()) or type(exc).__name__


class Command(loaddata.Command):
    help = (
        f"{loaddata.Command.help} Loaded customers, interactions and opportunities that have no change "
        "history (the fixture does not carry theirs) get a 'created' entry, dated at their created_at. "
        "A fixture that cannot be loaded whole (damaged, not UTF-8, unknown fields, invalid values) "
        "is an error and nothing of it is written."
    )

    def handle(self, *fixture_labels, **options):
        # Django loads every fixture in one transaction: an error here has rolled it all back.
        try:
            return super().handle(*fixture_labels, **options)
        except CommandError:
            raise
        except (DeserializationError, DatabaseError, ValidationError, UnicodeError, ValueError, OSError) as exc:
            message = _one_line(exc)
            if "fixture" not in message:
                message = f"Cannot load {', '.join(fixture_labels)}: {message}"
            raise CommandError(f"{message}. Nothing was loaded.") from exc

    def loaddata(self, fixture_labels):
        # Called inside handle()'s transaction: the records and their entries commit together.
        with history_for_loaded_records(using=self.using):
            super().loaddata(fixture_labels)
