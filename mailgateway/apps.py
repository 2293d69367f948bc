from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailGatewayConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mailgateway"
    verbose_name = _("Email in")

    def ready(self):
        from core import access
        from core.api.views import register_me_field

        from .models import bcc_address_of

        # A kept email is its gateway owner's (managers see all, as for records).
        access.register_owner_path(self.get_model("InboundEmail"), "user")
        register_me_field(
            "bcc_address",
            {
                "type": "string",
                "nullable": True,
                "description": "The user's private address to BCC or forward mail to, to log it on customers; "
                "null when the gateway is not set up (DJANGO_MAIL_GATEWAY_DOMAIN) or the user may not write.",
            },
            lambda user, request: bcc_address_of(user),
        )
