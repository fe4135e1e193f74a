"""Live-server fixtures for the pipeline tests: real daphne and Celery processes.

The processes run against the test database that pytest-django created and the
Redis of ``settings.REDIS_URL``, so tests must use ``transactional_db`` (data
committed by the test is what the subprocesses see).

Fixtures
--------
``live_server_factory``  starts a daphne process with extra environment (for
    example short timeouts); each started server lives until the session ends.
``daphne_server``        the shared daphne (session-scoped) with default settings:
    ``.url`` (``http://127.0.0.1:PORT``), ``.ws_url(session_id, **query)``.
``workerless_server``    a daphne whose Celery tasks go nowhere (in-memory broker),
    for tests that send the workers' channel-layer messages themselves.
``celery_workers``       one real ``celery worker -P prefork -c 1`` process per queue
    (stt, classify, respond, tts, default), session-scoped; started only by the
    tests that ask for it. Each worker's log is ``celery_workers.logs[queue]``.
``make_call``            creates a user, an agent and an active call session and
    returns a :class:`Call` with an access JWT for the user.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
QUEUES = ("stt", "classify", "respond", "tts", "default")
# Loading the STT/LLM/TTS models takes a few seconds on 2 cores; this is a ceiling.
WORKER_READY_TIMEOUT_S = 120.0
SERVER_READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database pytest-django created, for the subprocesses."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="voiceproj.settings",
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class LiveServer:
    """A running daphne process serving ``voiceproj.asgi:application``."""

    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, session_id: object, **query: str) -> str:
        suffix = f"?{urlencode(query)}" if query else ""
        return f"ws://127.0.0.1:{self.port}/ws/voice/{session_id}/{suffix}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _start_daphne(log_dir: Path, env: dict[str, str]) -> LiveServer:
    port = free_port()
    log_path = log_dir / f"daphne-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "voiceproj.serve"]
        + ["-b", "127.0.0.1", "-p", str(port), "voiceproj.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = LiveServer(port=port, process=proc, log_path=log_path)
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited with {proc.returncode}:\n{server.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"daphne did not listen on {port}:\n{server.log()}")


@pytest.fixture(scope="session")
def live_log_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="voice-live-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def live_server_factory(
    django_db_setup: None, live_log_dir: Path
) -> Iterator[Callable[..., LiveServer]]:
    """Start daphne processes on free ports; ``factory(VOICE_IDLE_TIMEOUT_S="2")``.

    Keyword arguments become environment variables of that process only.
    """
    started: list[LiveServer] = []

    def factory(**extra_env: str) -> LiveServer:
        server = _start_daphne(live_log_dir, subprocess_env(**extra_env))
        started.append(server)
        return server

    yield factory
    for server in started:
        _stop(server.process)


@pytest.fixture(scope="session")
def daphne_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    """The shared daphne with the project's default settings."""
    return live_server_factory()


@pytest.fixture(scope="session")
def workerless_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    """A daphne whose Celery tasks go to an in-memory broker no worker reads.

    For tests that play the workers' part through the channel layer: real
    workers started by other tests in the session must not answer their turns.
    """
    return live_server_factory(CELERY_BROKER_URL="memory://")


@dataclass
class Workers:
    """One Celery worker process per queue; ``logs[queue]`` reads its log."""

    processes: dict[str, subprocess.Popen]
    log_paths: dict[str, Path] = field(default_factory=dict)

    def log(self, queue: str) -> str:
        return self.log_paths[queue].read_text(errors="replace")

    def wait_ready(self, queues: tuple[str, ...], timeout: float = WORKER_READY_TIMEOUT_S) -> None:
        """Wait until each worker of ``queues`` logs ``ready`` (its engines are loaded)."""
        deadline = time.monotonic() + timeout
        pending = set(queues)
        while pending and time.monotonic() < deadline:
            for queue in list(pending):
                proc = self.processes[queue]
                if proc.poll() is not None:
                    raise RuntimeError(f"worker {queue} exited:\n{self.log(queue)}")
                if " ready." in self.log(queue):
                    pending.discard(queue)
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"workers not ready: {sorted(pending)}")

    def stop(self) -> None:
        for proc in self.processes.values():
            _stop(proc)


def _purge_queues() -> None:
    """Drop tasks left in the test broker by an earlier, interrupted run."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*QUEUES)
    client.close()


def start_workers(
    log_dir: Path, env: dict[str, str], queues: tuple[str, ...] = QUEUES, tag: str = ""
) -> Workers:
    """Start ``celery -A voiceproj worker -Q <queue> -P prefork -c 1`` per queue
    (the Procfile's pool) and wait until each logs ``ready``; stop them with
    :meth:`Workers.stop`. ``tag`` keeps log names apart between stacks."""
    workers = Workers(processes={})
    for queue in queues:
        log_path = log_dir / f"celery{tag}-{queue}.log"
        workers.log_paths[queue] = log_path
        workers.processes[queue] = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "voiceproj",
                "worker",
                "-Q",
                queue,
                "-P",
                "prefork",
                "-c",
                "1",
                "-n",
                f"{queue}-{uuid.uuid4().hex[:8]}@%h",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
    try:
        workers.wait_ready(queues)
    except BaseException:
        workers.stop()
        raise
    return workers


@pytest.fixture(scope="session")
def celery_workers(django_db_setup: None, live_log_dir: Path) -> Iterator[Workers]:
    """One real worker process per queue against the test database and Redis."""
    _purge_queues()
    workers = start_workers(live_log_dir, subprocess_env())
    yield workers
    workers.stop()


@dataclass
class Call:
    """A user with an agent and an active session, plus the user's access JWT."""

    user: object
    agent: object
    session: object
    token: str
    password: str

    @property
    def session_id(self) -> str:
        return str(self.session.id)


def wait_until_disconnected(session_ids: list[str], timeout: float = 10.0) -> None:
    """Wait until the server let go of these sessions' sockets.

    A server finishes a closed socket's work (saving an interrupted turn) just
    after the client is gone; the test database must not be flushed under it.
    """
    from calls.presence import presence_key

    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not client.exists(*(presence_key(sid) for sid in session_ids)):
                return
            time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture
def make_call(transactional_db: None) -> Iterator[Callable[..., Call]]:
    """``make_call(greeting="", user=None, **agent_fields)`` → :class:`Call`.

    On teardown waits until the live server has finished with the calls' sockets.
    """
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from agents.models import Agent
    from calls.services import start_session

    password = "pipeline-pass-1234"
    created: list[str] = []

    def factory(user: User | None = None, greeting: str = "", **agent_fields: object) -> Call:
        if user is None:
            name = f"caller-{uuid.uuid4().hex[:8]}"
            user = User.objects.create_user(name, f"{name}@example.com", password)
        agent = Agent.objects.create(
            owner=user,
            name=agent_fields.pop("name", "Test agent"),
            greeting=greeting,
            **agent_fields,
        )
        session = start_session(agent, user)
        created.append(str(session.id))
        return Call(
            user=user,
            agent=agent,
            session=session,
            token=str(AccessToken.for_user(user)),
            password=password,
        )

    yield factory
    if created:
        wait_until_disconnected(created)
