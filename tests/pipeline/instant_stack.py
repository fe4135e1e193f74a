"""Pipeline processes with an environment of their own, on a Redis DB of their own.

``celery_workers`` (conftest) serves the session's ``REDIS_URL`` with the
default engines. Tests that need workers with other settings (the instant
engines, say) must not share its broker: their workers would take the other
tests' turns and answer them with the wrong engines. :func:`isolated_redis_url`
names another database of the same Redis server for broker and channel layer
alike, and :func:`running_workers` starts one worker per queue in any
environment.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.pipeline.conftest import BIN, ROOT, WORKER_READY_TIMEOUT_S, Workers, _stop

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


@contextmanager
def running_workers(
    env: dict[str, str], log_dir: Path, queues: Sequence[str], label: str
) -> Iterator[Workers]:
    """``celery -A voiceproj worker -Q <queue> -P solo`` per queue, ready, then stopped.

    Logs go to ``log_dir/celery-<label>-<queue>.log``; waits until every worker
    logs ``ready`` (after its engines preload) and fails with the log of one
    that exits.
    """
    workers = Workers(processes={})
    try:
        for queue in queues:
            log_path = log_dir / f"celery-{label}-{queue}.log"
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
                    "solo",
                    "-n",
                    f"{label}-{queue}-{uuid.uuid4().hex[:8]}@%h",
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
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        pending = set(queues)
        while pending and time.monotonic() < deadline:
            for queue in list(pending):
                if workers.processes[queue].poll() is not None:
                    raise RuntimeError(f"worker {queue} exited:\n{workers.log(queue)}")
                if " ready." in workers.log(queue):
                    pending.discard(queue)
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"workers not ready: {sorted(pending)}")
        yield workers
    finally:
        for proc in workers.processes.values():
            _stop(proc)
