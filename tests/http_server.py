"""A real HTTP server for tests that receive requests (webhook receivers): 127.0.0.1, a free port, a thread."""

import threading
from http.server import ThreadingHTTPServer


class LocalHTTPServer:
    """Serves ``handler_class`` until :meth:`close`; ``url`` is its address with ``path``."""

    def __init__(self, handler_class, path="/hook"):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
