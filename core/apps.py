from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_save, pre_save
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = _("API infrastructure")

    def ready(self):
        from core.api.authentication import note_credential_change, revoke_tokens_after_credential_change

        # A new password or a deactivation ends the user's bearer tokens.
        pre_save.connect(note_credential_change, sender=settings.AUTH_USER_MODEL, dispatch_uid="tokens_credentials")
        post_save.connect(
            revoke_tokens_after_credential_change, sender=settings.AUTH_USER_MODEL, dispatch_uid="tokens_revoke"
        )
