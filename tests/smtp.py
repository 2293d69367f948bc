"""A real SMTP server in the test process (aiosmtpd), to receive the mail the CRM sends."""

import email
import email.policy
import socket
import threading

from aiosmtpd.controller import Controller


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """aiosmtpd's handler: keeps every message received, parsed."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.messages.append((envelope.rcpt_tos, message))
        return "250 Message accepted for delivery"

    def subjects(self):
        with self.lock:
            return sorted(str(message["Subject"]) for _, message in self.messages)


class SMTPServer:
    """Started on a free port of 127.0.0.1; ``stop()`` whatever happens."""

    def __init__(self):
        self.inbox = Inbox()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=free_port())

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    @property
    def port(self):
        return self.controller.port
