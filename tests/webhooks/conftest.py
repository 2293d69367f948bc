import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connections


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it gets and answers as told."""

    def __init__(self):
        self.requests = []
        # Each answer is (status, headers, delay in seconds); the last one repeats.
        self.answers = [(200, {}, 0)]
        # What someone does while the receiver answers (a manager deleting its endpoint), on the server's thread.
        self.meanwhile = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers), body))
                status, headers, delay = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                if delay:
                    time.sleep(delay)
                if receiver.meanwhile is not None:
                    try:
                        receiver.meanwhile()
                    finally:
                        connections.close_all()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"x" * 5000 if status >= 500 else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, *answers):
        self.answers = [answer if isinstance(answer, tuple) else (answer, {}, 0) for answer in answers]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_READ_TIMEOUT = 0.5
    settings.WEBHOOKS_CONNECT_TIMEOUT = 0.5
    server = Receiver()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(5)
