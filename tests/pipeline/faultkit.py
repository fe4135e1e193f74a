"""Fault injection for the reliability tests: a Redis server the test may kill
and start again, and a TCP proxy in front of PostgreSQL that can cut the
database off. (Killing a worker's pool process, what an OOM kill hits, is
``bench.stack.Worker.kill_pool``.)

Nothing here stands in for project code: the stack under test is real daphne
and real Celery workers; these only break the network or the processes
around them, as production would.
"""

import contextlib
import socket
import threading
from pathlib import Path

from bench.stack import RedisServer, start_redis


class RestartableRedis:
    """A private Redis that keeps no data, like ``make run``'s, which the test
    may kill (its data is gone, as after a crash) and start again on its port."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.server: RedisServer | None = start_redis(log_dir)
        self.port = self.server.port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        if self.server is not None:
            self.server.process.kill()
            self.server.process.wait()
            self.server = None

    def start(self) -> None:
        self.server = start_redis(self.log_dir, port=self.port)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; :meth:`cut` drops every connection
    and refuses new ones until :meth:`restore`, as a network partition would."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.open = False
        with self._lock:
            for sock in self._live:
                _hang_up(sock)
            self._live.clear()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._live.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                _hang_up(sock)


def _hang_up(sock: socket.socket) -> None:
    """Close both ways now. A bare close() while the other pump thread is blocked
    in recv() on the same socket sends no FIN on Linux: the database would keep
    a dead client's transaction, and its locks, open."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
