"""Django's ``loaddata``, giving the records it loads the "created" history entry raw saves skip."""

from django.core.management.commands import loaddata

from core.history import history_for_loaded_records


class Command(loaddata.Command):
    help = (
        f"{loaddata.Command.help} Loaded customers, interactions and opportunities that have no change "
        "history (the fixture does not carry theirs) get a 'created' entry, dated at their created_at."
    )

    def loaddata(self, fixture_labels):
        # Called inside handle()'s transaction: the records and their entries commit together.
        with history_for_loaded_records(using=self.using):
            super().loaddata(fixture_labels)
