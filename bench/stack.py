"""A whole voice stack of real processes, for benchmarks and end-to-end tests.

A stack is what ``make run`` serves, started on free ports so it never meets
another one: a private ``redis-server`` that keeps no data (as ``make run``'s),
a database (a fresh SQLite file migrated here, or a given ``DATABASE_URL``),
daphne serving ``voiceproj.asgi:application`` (one process, or several on
ports of their own) and one Celery worker per pipeline queue with the prefork
pool and one pool process, or more (what an OOM kill hits is a pool process;
its parent replaces it).

Nothing here imports Django: every process gets its settings from the
environment built by :func:`stack_env`, as in production.

    with start_stack(log_dir, engines=INSTANT_ENGINES) as stack:
        stack.server.url, stack.workers["respond"].kill_pool()
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import redis

ROOT = Path(__file__).resolve().parents[1]
# The queues of a caller's turn; ``default`` (housekeeping) plays no part in one.
PIPELINE_QUEUES = ("stt", "classify", "respond", "tts")
INSTANT_ENGINES = {"VOICE_STT": "instant", "VOICE_LLM": "instant", "VOICE_TTS": "instant"}
# A stack measures the platform's capacity with one account playing every
# caller (bench/load.py), so the per-user quotas (calls/quotas.py) are off.
NO_QUOTAS = {
    "VOICE_MAX_ACTIVE_CALLS_PER_USER": "0",
    "VOICE_SESSIONS_PER_HOUR": "0",
    "VOICE_TURNS_PER_MINUTE": "0",
}
# Loading the local STT/LLM/TTS models takes a few seconds on 2 cores; a ceiling.
WORKER_READY_TIMEOUT_S = 120.0
SERVER_READY_TIMEOUT_S = 30.0
REDIS_READY_TIMEOUT_S = 10.0
# A polite stop (SIGTERM) lets Celery finish its task and daphne close sockets.
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; returns once the process is gone."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes ``pids`` have used so far (Linux
    ``/proc``); a process that is gone counts 0."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with suppress(OSError):
            # After the command name (in parentheses, may hold spaces): utime is
            # field 14 and stime field 15 of the line, 12 and 13 of the rest.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _spawn(command: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen:
    # A new log each time: readiness is read from it, and a log name may be reused.
    with log_path.open("wb") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@dataclass
class RedisServer:
    """A private ``redis-server`` on a free port that keeps no data."""

    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        stop_process(self.process)


def start_redis(log_dir: Path, port: int | None = None) -> RedisServer:
    """Start a ``redis-server`` (on ``port``, or a free one) and wait until it answers PING."""
    port = port or free_port()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port)]
    command += ["--save", "", "--appendonly", "no"]
    server = RedisServer(port, _spawn(command, os.environ, log_dir / f"redis-{port}.log"))
    deadline = time.monotonic() + REDIS_READY_TIMEOUT_S
    with redis.Redis.from_url(server.url, socket_connect_timeout=0.5) as client:
        while True:
            try:
                client.ping()
                if server.process.poll() is not None:
                    # Another server answered: this one could not take the port.
                    raise RuntimeError(f"redis-server exited: port {port} is taken")
                return server
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.process.poll() is not None:
                    server.stop()
                    raise
                time.sleep(0.05)


def sqlite_url(path: Path) -> str:
    """The ``DATABASE_URL`` of a SQLite file (``make run``'s default database)."""
    return f"sqlite:///{path.resolve()}"


def stack_env(redis_url: str, database_url: str, **extra: str) -> dict[str, str]:
    """This process's environment with the stack's Redis (broker too) and database."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="voiceproj.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def migrate(env: Mapping[str, str]) -> None:
    """``manage.py migrate`` against the ``DATABASE_URL`` of ``env``, as ``make run`` does."""
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@dataclass
class Server:
    """A running daphne serving ``voiceproj.asgi:application``."""

    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, session_id: object, **query: str) -> str:
        """The call socket of ``session_id``; ``query`` e.g. ``ticket=...``."""
        suffix = f"?{urlencode(query)}" if query else ""
        return f"ws://127.0.0.1:{self.port}/ws/voice/{session_id}/{suffix}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def start_server(log_dir: Path, env: Mapping[str, str]) -> Server:
    """Start daphne (through ``voiceproj.serve``, its message-size limit included)
    on a free port and wait until it listens."""
    port = free_port()
    command = [sys.executable, "-m", "voiceproj.serve"]
    command += ["-b", "127.0.0.1", "-p", str(port), "voiceproj.asgi:application"]
    log_path = log_dir / f"daphne-{port}.log"
    server = Server(port, _spawn(command, env, log_path), log_path)
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"daphne exited with {server.process.returncode}:\n{server.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"daphne did not listen on {port}:\n{server.log()}")


@dataclass
class Worker:
    """One ``celery worker -Q <queue> -P prefork -c N`` process."""

    queue: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def ready(self) -> bool:
        """The worker logged ``ready``: its engines are loaded and it takes tasks."""
        if self.process.poll() is not None:
            raise RuntimeError(f"worker {self.queue} exited:\n{self.log()}")
        return " ready." in self.log()

    def pool_pids(self) -> list[int]:
        """The pool processes: the ones that run the tasks (children of the worker)."""
        found = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        )
        return [int(pid) for pid in found.stdout.split()]

    def kill_pool(self, sig: signal.Signals = signal.SIGKILL) -> list[int]:
        """Signal every pool process, as the kernel's OOM killer would; their pids."""
        pids = self.pool_pids()
        for pid in pids:
            with suppress(ProcessLookupError):  # it was being replaced already
                os.kill(pid, sig)
        return pids

    def stop(self) -> None:
        stop_process(self.process)


def start_workers(
    log_dir: Path,
    env: Mapping[str, str],
    queues: tuple[str, ...] = PIPELINE_QUEUES,
    tag: str = "",
    concurrency: int = 1,
) -> dict[str, Worker]:
    """One worker per queue with ``concurrency`` pool processes, waited for until
    each is ready; ``tag`` keeps log names apart."""
    # Readiness (" ready.") and the tests (" received") are read from INFO lines.
    env = {**env, "LOG_LEVEL": "INFO"}
    workers: dict[str, Worker] = {}
    for queue in queues:
        command = [sys.executable, "-m", "celery", "-A", "voiceproj", "worker", "-Q", queue]
        command += ["-P", "prefork", "-c", str(concurrency)]
        command += ["-n", f"{queue}-{uuid.uuid4().hex[:8]}@%h"]
        command += ["--without-gossip", "--without-mingle"]
        log_path = log_dir / f"celery{tag}-{queue}.log"
        workers[queue] = Worker(queue, _spawn(command, env, log_path), log_path)
    try:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        while not all(worker.ready for worker in workers.values()):
            if time.monotonic() > deadline:
                pending = sorted(q for q, worker in workers.items() if not worker.ready)
                raise RuntimeError(f"workers not ready: {pending}")
            time.sleep(0.2)
    except BaseException:
        for worker in workers.values():
            worker.stop()
        raise
    return workers


@dataclass
class Stack:
    """A running stack: its Redis, database, daphne processes and workers by queue."""

    redis: RedisServer
    database_url: str
    servers: list[Server]
    workers: dict[str, Worker]

    @property
    def server(self) -> Server:
        """The first daphne (the only one unless the stack was started with more)."""
        return self.servers[0]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by the daphne processes (``web``) and by each
        queue's worker, its pool processes included."""
        used = {"web": cpu_seconds([server.process.pid for server in self.servers])}
        for queue, worker in self.workers.items():
            used[queue] = cpu_seconds([worker.process.pid, *worker.pool_pids()])
        return used


@contextmanager
def start_stack(
    log_dir: Path,
    database_url: str | None = None,
    engines: Mapping[str, str] | None = None,
    queues: tuple[str, ...] = PIPELINE_QUEUES,
    web: int = 1,
    concurrency: int = 1,
    **extra_env: str,
) -> Iterator[Stack]:
    """Start a stack, yield it, stop every process of it on the way out.

    ``web`` daphne processes, each on a port of its own (nothing balances
    between them: a client picks one), and ``concurrency`` pool processes in
    the worker of each queue.

    Without ``database_url`` the database is a fresh SQLite file in ``log_dir``,
    migrated first. ``engines`` (e.g. :data:`INSTANT_ENGINES`) and ``extra_env``
    go to every process; the per-user quotas are off unless ``extra_env`` sets them.
    """
    redis_server = start_redis(log_dir)
    try:
        if database_url is None:
            database_url = sqlite_url(log_dir / f"stack-{uuid.uuid4().hex[:8]}.sqlite3")
            migrate(stack_env(redis_server.url, database_url))
        env = stack_env(
            redis_server.url, database_url, **{**NO_QUOTAS, **(engines or {}), **extra_env}
        )
        workers = start_workers(log_dir, env, queues, concurrency=concurrency)
        servers: list[Server] = []
        try:
            for _ in range(web):
                servers.append(start_server(log_dir, env))
            yield Stack(redis_server, database_url, servers, workers)
        finally:
            for server in servers:
                server.stop()
            for worker in workers.values():
                worker.stop()
    finally:
        redis_server.stop()
