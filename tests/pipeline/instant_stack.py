"""A Redis database of their own for pipeline processes with other settings.

``celery_workers`` (conftest) serves the session's ``REDIS_URL`` with the
default engines. Workers started with other settings (the instant engines,
say) must not share its broker: they would take the other tests' turns and
answer them with the wrong engines, and the default workers theirs.
:func:`isolated_redis_url` names another database of the same Redis server;
:func:`start_instant_stack` starts daphne and workers on the instant engines
there (both get it as ``REDIS_URL`` and ``CELERY_BROKER_URL``), ``replicas``
of each against that one Redis and the test database for a scale-out stack.
"""

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
from django.conf import settings

from bench.stack import INSTANT_ENGINES
from tests.conftest import clear_quota_windows

from .conftest import LiveServer, Workers, start_workers, subprocess_env

# The last of Redis's 16 default databases: ``make run`` uses 0 and test
# sessions are handed low indices. INSTANT_STACK_REDIS_DB picks another one
# where two such stacks run on one Redis at the same time.
DEFAULT_DB = 15


def isolated_redis_url(base_url: str) -> str:
    """``base_url`` with its database index replaced by one no test session uses."""
    db = int(os.environ.get("INSTANT_STACK_REDIS_DB", DEFAULT_DB))
    parts = urlsplit(base_url)
    if parts.path.strip("/") == str(db):
        raise RuntimeError(f"Redis DB {db} is the session's own; set INSTANT_STACK_REDIS_DB.")
    return urlunsplit(parts._replace(path=f"/{db}"))


@dataclass
class InstantStack:
    """The stack's daphne processes and worker sets (one worker per queue each)."""

    servers: list[LiveServer]
    worker_sets: list[Workers]
    redis_url: str

    @property
    def server(self) -> LiveServer:
        return self.servers[0]

    @property
    def workers(self) -> Workers:
        return self.worker_sets[0]


@contextmanager
def start_instant_stack(
    live_server_factory: Callable[..., LiveServer],
    log_dir: Path,
    queues: tuple[str, ...],
    tag: str = "-instant",
    replicas: int = 1,
    **server_env: str,
) -> Iterator[InstantStack]:
    """``replicas`` daphne processes (with ``server_env`` besides) and as many
    workers per queue, instant engines, the isolated Redis DB; the workers stop
    on the way out. ``server_env`` goes to the workers too: a setting such as
    LOG_FORMAT is the deployment's, not one process's."""
    redis_url = isolated_redis_url(settings.REDIS_URL)
    extra = {"REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url, **INSTANT_ENGINES}
    with redis.Redis.from_url(redis_url) as client:
        client.delete(*queues)  # tasks left behind by an interrupted run
    clear_quota_windows(redis_url)
    worker_sets: list[Workers] = []
    try:
        for replica in range(replicas):
            suffix = f"-{replica}" if replica else ""
            env = subprocess_env(**extra, **server_env)
            worker_sets.append(start_workers(log_dir, env, queues, tag=f"{tag}{suffix}"))
        servers = [live_server_factory(**extra, **server_env) for _ in range(replicas)]
        yield InstantStack(servers, worker_sets, redis_url)
    finally:
        for workers in worker_sets:
            workers.terminate()
        for workers in worker_sets:
            workers.stop()
