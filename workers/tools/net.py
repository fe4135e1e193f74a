"""One HTTP request to an operator's tool, guarded against SSRF.

Consumes a tool URL, method, headers, the validated arguments and a timeout;
produces the response body (at most :data:`MAX_RESPONSE_BYTES`) or a
:class:`ToolFailure` with a stable code.

The guard (docs/security.md): the host is resolved once, every address it
resolves to must be public unless the host is in ``TOOLS_ALLOWED_HOSTS``, and
the connection goes to the address that was checked — never to a second
resolution, so a DNS answer that changes between check and connect (DNS
rebinding) cannot reach an internal address. TLS still verifies the
certificate against the host name. Redirects are not followed: a 3xx is a
failure, since its target was never checked.
"""

import http.client
import ipaddress
import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings

# A tool result is spoken in a sentence or two; 64 KiB is far more than that
# needs and bounds what a misbehaving server can make a worker hold.
MAX_RESPONSE_BYTES = 64 * 1024
READ_CHUNK = 8192
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
USER_AGENT = "voiceproj-tools/1"


class ToolFailure(Exception):
    """A tool call that did not produce a result; ``code`` is stable (docs/tools.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def is_public(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is not part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def checked_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: every address it resolves to is
    checked, the first is used."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ToolFailure("unreachable", f"Cannot resolve {host!r}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ToolFailure("unreachable", f"{host!r} has no address.")
    if host.lower() not in settings.TOOLS_ALLOWED_HOSTS:
        for address in addresses:
            if not is_public(address):
                raise ToolFailure(
                    "blocked_address",
                    f"{host!r} resolves to the non-public address {address}; add the host "
                    "to TOOLS_ALLOWED_HOSTS to allow it.",
                )
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to a checked address, with the URL's host in ``Host``.

    ``pinned`` keeps the socket: http.client drops ``sock`` once a response
    says it closes the connection, but the body is still read from it.
    """

    pinned: socket.socket | None = None

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = self.pinned = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address; the certificate is checked for the host."""

    pinned: socket.socket | None = None

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self.pinned = self._tls.wrap_socket(raw, server_hostname=self.host)


def request(
    url: str, method: str, headers: dict[str, str], arguments: dict[str, Any], timeout_s: float
) -> str:
    """Send ``arguments`` (JSON body, or the query string for GET and DELETE) and
    return the response text; the whole exchange fits in ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    address = checked_address(host, port)
    path = parts.path or "/"
    query = parts.query
    body: bytes | None = None
    sent_headers = {"User-Agent": USER_AGENT, "Accept": "application/json, text/plain", **headers}
    if method in BODY_METHODS:
        body = json.dumps(arguments).encode()
        sent_headers["Content-Type"] = "application/json"
    elif arguments:
        flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in arguments.items()}
        query = f"{query}&{urlencode(flat)}" if query else urlencode(flat)
    target = f"{path}?{query}" if query else path
    kind = _PinnedHTTPS if https else _PinnedHTTP
    connection = kind(host, port, address, timeout=_left(deadline))
    try:
        connection.request(method, target, body=body, headers=sent_headers)
        _set_timeout(connection, deadline)
        response = connection.getresponse()
        if 300 <= response.status < 400:
            raise ToolFailure(
                "redirect_refused",
                f"The tool answered {response.status} (redirects are not followed).",
            )
        data = _read_capped(connection, response, deadline)
        if response.status >= 400:
            raise ToolFailure(
                "http_error",
                f"The tool answered {response.status}: {data[:200].decode(errors='replace')}",
            )
        return data.decode(errors="replace")
    except TimeoutError as exc:
        raise ToolFailure("timeout", f"No answer within {timeout_s} s.") from exc
    except ssl.SSLError as exc:
        raise ToolFailure("unreachable", f"TLS failed: {exc}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ToolFailure("unreachable", f"{type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()


def _set_timeout(connection: "_PinnedHTTP | _PinnedHTTPS", deadline: float) -> None:
    if connection.pinned is not None:
        connection.pinned.settimeout(_left(deadline))


def _read_capped(
    connection: "_PinnedHTTP | _PinnedHTTPS", response: http.client.HTTPResponse, deadline: float
) -> bytes:
    """The body, read in chunks so neither its size nor a trickle outlasts the limits."""
    data = b""
    while True:
        _set_timeout(connection, deadline)
        chunk = response.read(READ_CHUNK)
        if not chunk:
            return data
        data += chunk
        if len(data) > MAX_RESPONSE_BYTES:
            raise ToolFailure("too_large", f"The answer is larger than {MAX_RESPONSE_BYTES} bytes.")


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left
