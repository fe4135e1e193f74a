"""A tiny threaded HTTP server for provider fakes.

Each fake subclasses :class:`FakeHandler` and speaks one provider's wire
protocol. Tests flip :attr:`FakeServer.mode` to make it misbehave the way real
services do ("unauthorized", "error", "slow", "malformed") and read
:attr:`FakeServer.requests` to assert what the real SDK sent.
"""

import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased: HTTP header names are case-insensitive
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeServer:
    handler: type["FakeHandler"]
    mode: str = "ok"
    # Seconds a "slow" answer sleeps: longer than the engines' test timeout.
    slow_s: float = 3.0
    requests: list[Recorded] = field(default_factory=list)
    # Streaming fakes pause after their first chunk until the test sets this,
    # which proves the client yields data before the body is complete.
    release: threading.Event = field(default_factory=threading.Event)
    released_in_time: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streaming needs 1.1

    @property
    def fake(self) -> FakeServer:
        return self.server.fake  # type: ignore[attr-defined]

    def handle(self) -> None:
        # The client may give up first: that is what the timeout tests make it do.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Keep test output clean."""

    def record(self) -> Recorded:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else self._read_chunked()
        parts = urlsplit(self.path)
        recorded = Recorded(
            self.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        self.fake.requests.append(recorded)
        return recorded

    def _read_chunked(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return b""
        body = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return body
            body += self.rfile.read(size)
            self.rfile.readline()

    def send_json(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, chunks: list[bytes], content_type: str) -> None:
        """Send ``chunks`` with chunked transfer encoding, pausing after the first."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index, chunk in enumerate(chunks):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            if index == 0 and len(chunks) > 1:
                self.fake.released_in_time = self.fake.release.wait(5)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def misbehave(self) -> bool:
        """Answer per the fake's failure mode; True if an answer was sent."""
        mode = self.fake.mode
        if mode == "error":
            self.send_json(500, {"error": "internal server error"})
        elif mode == "slow":
            threading.Event().wait(self.fake.slow_s)
            self.send_json(500, {"error": "too late"})
        elif mode == "malformed":
            self.send_json(200, b"<html>surprise</html>", "application/json")
        else:
            return False
        return True
