"""Fault injection for the reliability tests: a Redis server the test may stop
and start again, a TCP proxy in front of PostgreSQL that can cut the database
off, and the pool processes of a prefork Celery worker (what an OOM kill hits).

Nothing here stands in for project code: the stack under test is real daphne
and real Celery workers; these only break the network or the processes
around them, as production would.
"""

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .conftest import free_port


@dataclass
class RedisProcess:
    """A private ``redis-server`` that keeps no data, like ``make run``'s."""

    log_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.log_dir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
            + ["--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def kill(self) -> None:
        """Stop Redis the hard way: its data is gone, as after a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


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


def pool_processes(worker_pid: int) -> list[int]:
    """The pool processes of a prefork worker: the ones that run its tasks."""
    found = subprocess.run(["pgrep", "-P", str(worker_pid)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def signal_pool(worker_pid: int, sig: signal.Signals) -> list[int]:
    """Send ``sig`` to every pool process of the worker; their pids."""
    pids = pool_processes(worker_pid)
    for pid in pids:
        os.kill(pid, sig)
    return pids
