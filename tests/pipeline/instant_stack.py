"""A Redis database of their own for pipeline processes with other settings.

``celery_workers`` (conftest) serves the session's ``REDIS_URL`` with the
default engines. Workers started with other settings (the instant engines,
say) must not share its broker: they would take the other tests' turns and
answer them with the wrong engines, and the default workers theirs.
:func:`isolated_redis_url` names another database of the same Redis server;
:func:`start_instant_stack` starts daphne and workers on the instant engines
there (both get it as ``REDIS_URL`` and ``CELERY_BROKER_URL``).
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
    server: LiveServer
    workers: Workers
    redis_url: str


@contextmanager
def start_instant_stack(
    live_server_factory: Callable[..., LiveServer],
    log_dir: Path,
    queues: tuple[str, ...],
    tag: str = "-instant",
    **server_env: str,
) -> Iterator[InstantStack]:
    """daphne (with ``server_env`` besides) and a worker per queue, instant
    engines, the isolated Redis DB; the workers stop on the way out."""
    redis_url = isolated_redis_url(settings.REDIS_URL)
    extra = {"REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url, **INSTANT_ENGINES}
    with redis.Redis.from_url(redis_url) as client:
        client.delete(*queues)  # tasks left behind by an interrupted run
    clear_quota_windows(redis_url)
    workers = start_workers(log_dir, subprocess_env(**extra), queues, tag=tag)
    try:
        yield InstantStack(live_server_factory(**extra, **server_env), workers, redis_url)
    finally:
        workers.stop()
