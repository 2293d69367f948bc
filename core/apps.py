from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = _("API infrastructure")

    def ready(self):
        from django.contrib import admin

        from . import access, changesets, customfields, events
        from .admin.changesets import ChangesetAdmin
        from .admin.tags import TagAdmin
        from .models import Changeset, Tag

        # Events keep the owner of their record at the time: a deleted record's events stay in its book.
        access.register_owner_path(self.get_model("Event"), "owner")
        customfields.connect_signals()
        changesets.install()
        events.register_type("changeset.undone")
        # A rep sees the changesets they made.
        access.register_owner_path(self.get_model("Changeset"), "user")
        admin.site.register(Tag, TagAdmin)
        admin.site.register(Changeset, ChangesetAdmin)
