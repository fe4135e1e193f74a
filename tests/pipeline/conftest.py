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
``instant_stack``        daphne and one worker per pipeline queue on the instant
    engines (module-scoped), on a Redis database of their own (``instant_stack.py``).
``make_call``            creates a user, an agent and an active call session and
    returns a :class:`Call` with an access JWT for the user.

The processes are started by ``bench.stack`` (shared with ``bench/soak.py``);
this module points them at the test database and the session's Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from bench import stack
from bench.stack import Server as LiveServer
from bench.stack import free_port as free_port  # re-exported for the pipeline tests
from bench.stack import start_server

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
QUEUES = ("stt", "classify", "respond", "tts", "default")


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
        server = start_server(live_log_dir, subprocess_env(**extra_env))
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


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
    """One Celery worker process per queue (``bench.stack.Worker``)."""

    by_queue: dict[str, stack.Worker]

    @property
    def processes(self) -> dict[str, subprocess.Popen]:
        return {queue: worker.process for queue, worker in self.by_queue.items()}

    @property
    def log_paths(self) -> dict[str, Path]:
        return {queue: worker.log_path for queue, worker in self.by_queue.items()}

    def log(self, queue: str) -> str:
        return self.by_queue[queue].log()

    def terminate(self) -> None:
        """Ask every worker to stop (SIGTERM) without waiting: they wind down together."""
        for worker in self.by_queue.values():
            if worker.process.poll() is None:
                worker.process.terminate()

    def stop(self) -> None:
        self.terminate()
        for worker in self.by_queue.values():
            with suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=stack.STOP_TIMEOUT_S)
            worker.stop()  # forces out one that did not stop in time


def _purge_queues() -> None:
    """Drop tasks left in the test broker by an earlier, interrupted run."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*QUEUES)
    client.close()


def start_workers(
    log_dir: Path, env: dict[str, str], queues: tuple[str, ...] = QUEUES, tag: str = ""
) -> Workers:
    """Start ``celery -A voiceproj worker -Q <queue> -P prefork -c 1`` per queue
    (the pool ``make run`` uses) and wait until each logs ``ready``; stop them
    with :meth:`Workers.stop`. ``tag`` keeps log names apart between stacks."""
    return Workers(stack.start_workers(log_dir, env, queues, tag))


@pytest.fixture(scope="session")
def celery_workers(django_db_setup: None, live_log_dir: Path) -> Iterator[Workers]:
    """One real worker process per queue against the test database and Redis."""
    _purge_queues()
    workers = start_workers(live_log_dir, subprocess_env())
    yield workers
    workers.stop()


@pytest.fixture(scope="module")
def instant_stack(live_server_factory: Callable[..., LiveServer], live_log_dir: Path) -> Iterator:
    """daphne + one worker per pipeline queue, instant engines, an isolated Redis DB."""
    # Imported here: instant_stack.py builds on this module's helpers.
    from .instant_stack import start_instant_stack

    with start_instant_stack(live_server_factory, live_log_dir, stack.PIPELINE_QUEUES) as started:
        yield started


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
