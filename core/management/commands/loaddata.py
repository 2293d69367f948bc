"""Django's ``loaddata``, giving the records it loads the history entries raw saves skip, refusing to
overwrite records already in the database unless told to (``--replace``), and answering a fixture it
cannot load with a one-line error (nothing of it is written)."""

from collections import Counter

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.management.commands import loaddata
from django.core.serializers.base import DeserializationError
from django.db import DatabaseError
from django.db.models.signals import post_save, pre_save

from core.history import history_for_loaded_records, keeps_history


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
        "A fixture that would overwrite records already in the database (an object whose primary key is "
        "taken, of a model with change history or of that history) is refused, unless --replace. "
        "Columns a save computes from a record's other fields (a phone number's E.164 form, a company's "
        "name key) are computed for the loaded rows as a save computes them. "
        "A fixture that cannot be loaded whole (damaged, not UTF-8, unknown fields, invalid values) "
        "is an error and nothing of it is written."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--replace",
            action="store_true",
            help=(
                "Overwrite the records already in the database that the fixture holds (by primary key); "
                "each one changed gets a 'changed' history entry and an event, as a save would. Rows "
                "without history (a deal's stage log) are overwritten as Django's loaddata does."
            ),
        )

    def handle(self, *fixture_labels, **options):
        self.replace = options["replace"]
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
        self.inserted, self.overwritten = set(), []
        uid = f"core.loaddata.{id(self)}"
        pre_save.connect(self._deriving, weak=False, dispatch_uid=f"{uid}.pre")
        post_save.connect(self._noting, weak=False, dispatch_uid=f"{uid}.post")
        try:
            with history_for_loaded_records(using=self.using):
                super().loaddata(fixture_labels)
        finally:
            pre_save.disconnect(dispatch_uid=f"{uid}.pre")
            post_save.disconnect(dispatch_uid=f"{uid}.post")

    def load_label(self, fixture_label):
        super().load_label(fixture_label)
        if self.overwritten and not self.replace:
            # Before the sequences are reset, which PostgreSQL does not roll back.
            raise CommandError(self._overwrite_refused(fixture_label))

    def _deriving(self, sender, instance, raw=False, using=None, **kwargs):
        """A fixture's row gets the columns a save computes from its other fields (raw saves skip ``save()``),
        before it is written and before its history entry is taken from it."""
        if raw and using == self.using and hasattr(instance, "set_derived_fields"):
            instance.set_derived_fields()

    def _noting(self, sender, instance, created, raw=False, using=None, **kwargs):
        """Note the rows the load inserted, and those of records it overwrote (a row there before)."""
        if not raw or using != self.using:
            return
        key = (sender._meta.label_lower, instance.pk)
        if created:
            self.inserted.add(key)
        elif key not in self.inserted and keeps_history(sender):
            self.overwritten.append(key)

    def _overwrite_refused(self, fixture_label):
        counts = Counter(label for label, _pk in self.overwritten)
        listed = ", ".join(f"{count} {label}" for label, count in sorted(counts.items()))
        first_label, first_pk = self.overwritten[0]
        return (
            f"Cannot load {fixture_label}: it would overwrite {len(self.overwritten)} record(s) already in the "
            f"database ({listed}; the first is {first_label} {first_pk}). Nothing was loaded. To overwrite them, "
            f"with a history entry and an event of each change, run it again with --replace."
        )
