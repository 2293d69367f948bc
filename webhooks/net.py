"""Where a webhook may go, and the HTTP request that goes there.

The CRM must not become a way to reach the internal network: an endpoint's host
is resolved and refused if any of its addresses is private, loopback,
link-local or otherwise not public (unless ``WEBHOOKS_ALLOW_PRIVATE``). The
check runs when the endpoint is saved and again at each delivery, after a fresh
DNS lookup; the connection then goes to the address that was checked (with
the original host name in ``Host`` and for TLS), so a DNS answer that changes
between check and connect cannot slip through. Redirects are not followed.
"""

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class Refused(Exception):
    """The URL may not be used; the message says why, for the user."""


# IPv6 prefixes whose last 32 bits are an IPv4 address that a translator or tunnel reaches:
# IPv4-compatible (deprecated), IPv4-translated (SIIT), NAT64 (well-known and local-use prefixes).
_EMBEDDING_IPV4 = [
    ipaddress.ip_network(prefix) for prefix in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")
]


def _is_public(address):
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # Judged by the IPv4 address inside, where there is one: 64:ff9b::a00:5 is 10.0.0.5 through NAT64.
        teredo = ip.teredo
        embedded = ip.ipv4_mapped or ip.sixtofour or (teredo[1] if teredo else None)
        if embedded is None and any(ip in network for network in _EMBEDDING_IPV4):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not _is_public(str(embedded)):
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url):
    """(scheme, host, port, path, the addresses to connect to) for ``url``, or :class:`Refused`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(f"This URL cannot be read: {error}.") from None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host:
        raise Refused("Use an http(s) URL with a host name.")
    if parts.username is not None or parts.password is not None:
        raise Refused("Put no user name or password in the URL; verify the signature instead.")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Refused(f"The host {host} cannot be resolved.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    private = [address for address in addresses if not _is_public(address)]
    allow_private = settings.WEBHOOKS_ALLOW_PRIVATE
    if private and not allow_private:
        raise Refused(f"{host} resolves to a private, loopback or link-local address ({private[0]}); refused.")
    # Plain http only where nobody else can listen in: in DEBUG, or to allowed private addresses.
    if scheme != "https" and not settings.DEBUG and not (allow_private and len(private) == len(addresses)):
        raise Refused("Use https.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path, addresses


@dataclass
class Answer:
    status: int | None
    body: str
    headers: dict
    error: str
    duration_ms: int


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, address, connect_timeout, **kwargs):
        super().__init__(*args, **kwargs)
        self._address, self._connect_timeout = address, connect_timeout
        # A second descriptor of the connection's socket, for _cut: TLS takes the first one over.
        self.watch = None

    def _open(self):
        sock = socket.create_connection((self._address, self.port), self._connect_timeout)
        sock.settimeout(self.timeout)
        self.watch = sock.dup()
        return sock

    def connect(self):
        self.sock = self._open()

    def close(self):
        super().close()
        if self.watch is not None:
            self.watch.close()
            self.watch = None


class _PinnedHTTPSConnection(_PinnedHTTPConnection, http.client.HTTPSConnection):
    def connect(self):
        self.sock = self._context.wrap_socket(self._open(), server_hostname=self.host)


def _cut(connection, expired):
    """The attempt's time is up: end the connection under the reads and writes that are still waiting."""
    expired.set()
    watch = connection.watch
    if watch is not None:
        try:
            # Shuts the socket itself down, under every descriptor: a waiting read sees the end of the stream.
            watch.shutdown(socket.SHUT_RDWR)
        except OSError:  # closed meanwhile
            pass


def post(url, body, headers):
    """POST ``body`` to ``url`` (checked again here), with the short timeouts of the settings; never raises."""
    started = time.monotonic()

    def answer(status=None, text="", response_headers=None, error=""):
        limit = settings.WEBHOOKS_RESPONSE_BODY_LIMIT
        # Kept in the delivery log: without NULs, which PostgreSQL text cannot hold (a UTF-16 or binary
        # answer has them), else the outcome could never be saved and the delivery would be sent forever.
        text, error = text.replace("\x00", ""), error.replace("\x00", "")
        return Answer(
            status, text[:limit], response_headers or {}, error[:500], round((time.monotonic() - started) * 1000)
        )

    try:
        scheme, host, port, path, addresses = check_url(url)
    except Refused as refused:
        return answer(error=str(refused))
    kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    extra = {"context": ssl.create_default_context()} if scheme == "https" else {}
    connection = kind(
        host,
        port,
        timeout=settings.WEBHOOKS_READ_TIMEOUT,
        address=addresses[0],
        connect_timeout=settings.WEBHOOKS_CONNECT_TIMEOUT,
        **extra,
    )
    # The timeouts bound each wait for the network, not the attempt: a receiver answering a byte at a
    # time, each within the read timeout, would hold the worker (and outlast the delivery's claim).
    # The whole attempt gets the two timeouts together, then the connection is cut.
    expired = threading.Event()
    deadline = threading.Timer(
        settings.WEBHOOKS_CONNECT_TIMEOUT + settings.WEBHOOKS_READ_TIMEOUT, _cut, (connection, expired)
    )
    deadline.daemon = True
    deadline.start()
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        # Read no more than is kept: a receiver cannot make the worker download a large answer.
        text = response.read(settings.WEBHOOKS_RESPONSE_BODY_LIMIT).decode("utf-8", "replace")
        return answer(response.status, text, {k.lower(): v for k, v in response.getheaders()})
    except TimeoutError:
        return answer(error="Timed out.")
    except (OSError, http.client.HTTPException) as error:
        return answer(error="Timed out." if expired.is_set() else f"{type(error).__name__}: {error}")
    finally:
        deadline.cancel()
        connection.close()
