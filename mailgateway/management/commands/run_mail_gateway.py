"""``manage.py run_mail_gateway``: the SMTP server that logs the mail users BCC or forward to the CRM."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailgateway.smtp import Gateway


class Command(BaseCommand):
    help = (
        "Run the mail gateway: an SMTP server that receives the mail users BCC or forward to their private "
        "address (<token>@DJANGO_MAIL_GATEWAY_DOMAIN, shown as bcc_address in GET /api/auth/me) and logs it "
        "as an email interaction on every customer of theirs whose address is in From, To or Cc; mail matching "
        "no customer is kept for them to assign in the admin. Point the domain's MX record at this server "
        "(or a relay in front of it). Messages over DJANGO_MAIL_GATEWAY_MAX_BYTES (10 MB) are refused. "
        "Stop it with Ctrl-C or SIGTERM. Example: `manage.py run_mail_gateway --host 0.0.0.0 --port 2525`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=2525, help="port to listen on (default 2525; 0: any free)")

    def handle(self, *args, host, port, **options):
        if not settings.MAIL_GATEWAY_DOMAIN:
            raise CommandError("Set DJANGO_MAIL_GATEWAY_DOMAIN (the domain of the users' gateway addresses) first.")
        if not 0 <= port <= 65535:
            raise CommandError(f"--port must be between 0 and 65535, got {port}.")
        gateway = Gateway(host, port)

        def stop(signum, frame):
            gateway.loop.call_soon_threadsafe(gateway.loop.stop)

        def ready():
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            self.stdout.write(
                f"Mail gateway listening on {host}:{gateway.port} for *@{settings.MAIL_GATEWAY_DOMAIN}", ending="\n"
            )
            self.stdout.flush()

        try:
            gateway.run(ready=ready)
        except OSError as error:
            raise CommandError(f"Cannot listen on {host}:{port}: {error}") from error
        self.stdout.write("Mail gateway stopped.")
