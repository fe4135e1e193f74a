"""Health of a web process, in two answers.

* ``GET /api/health`` — liveness, public: ``{"status": "ok"}`` while the
  process serves requests. It reads nothing, so a probe cannot be used to load
  the database or the workers, and it tells an outsider nothing.
* ``GET /api/health/ready`` — readiness, for monitoring (voiceproj/monitoring.py:
  the MONITORING_TOKEN or a staff user): can this process reach its database,
  Redis and workers? 503 when the database or Redis is down (a load balancer
  should take the process out of rotation); missing Celery workers only make
  the status ``degraded``, because the API still works without them. Failures
  are reported as stable codes; the exception itself goes to the log.
"""

import logging
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest
from ninja import Router, Schema, Status

from voiceproj.celery import ALL_QUEUES, app
from voiceproj.errors import ErrorOut
from voiceproj.monitoring import MonitoringAuth

router = Router(tags=["health"])
logger = logging.getLogger(__name__)

# Short enough that a health probe never hangs on a dead dependency, long enough
# for a busy worker to answer a broadcast on a loaded machine.
REDIS_TIMEOUT_S = 1.0
INSPECT_TIMEOUT_S = 0.5
# The worker count comes from a broadcast every worker must answer: probes
# every second from several balancers would keep them all busy answering, so
# one answer serves every probe of every web process for a few seconds.
WORKER_COUNT_CACHE_S = 5
WORKER_COUNT_KEY = "health:worker-counts"
UNREACHABLE = "unreachable"


class LiveOut(Schema):
    status: str


class Check(Schema):
    ok: bool
    error: str | None = None


class QueueStatus(Schema):
    workers: int


class ReadyOut(Schema):
    status: str
    database: Check
    redis: Check
    queues: dict[str, QueueStatus]


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception:  # any driver error means "down"
        logger.exception("readiness: the database is unreachable")
        return {"ok": False, "error": UNREACHABLE}


def check_redis() -> dict[str, Any]:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
    )
    try:
        client.ping()
        return {"ok": True}
    except redis.RedisError:
        logger.exception("readiness: Redis is unreachable")
        return {"ok": False, "error": UNREACHABLE}
    finally:
        client.close()


def worker_counts() -> dict[str, dict[str, int]]:
    """Live workers consuming each queue, from a broadcast ``active_queues`` inspect."""
    counts = {queue: 0 for queue in ALL_QUEUES}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=REDIS_TIMEOUT_S)
            replies = app.control.inspect(timeout=INSPECT_TIMEOUT_S, connection=conn)
            for queues in (replies.active_queues() or {}).values():
                for queue in queues:
                    if queue.get("name") in counts:
                        counts[queue["name"]] += 1
    except Exception:  # broker unreachable: every queue reports zero workers
        logger.warning("readiness: the broker did not answer the worker inspect", exc_info=True)
    return {queue: {"workers": n} for queue, n in counts.items()}


@router.get("/health", response=LiveOut, auth=None)
def health(request: HttpRequest) -> dict[str, str]:
    """Liveness: 200 while this process serves requests."""
    return {"status": "ok"}


@router.get(
    "/health/ready",
    response={200: ReadyOut, 401: ErrorOut, 503: ReadyOut},
    auth=MonitoringAuth(),
)
def ready(request: HttpRequest):  # type: ignore[no-untyped-def]
    """Readiness: database, Redis and the workers on every queue (monitoring token or staff)."""
    database, broker = check_database(), check_redis()
    queues = {q: {"workers": 0} for q in ALL_QUEUES}
    if broker["ok"]:
        queues = cache.get_or_set(WORKER_COUNT_KEY, worker_counts, WORKER_COUNT_CACHE_S) or queues
    if not (database["ok"] and broker["ok"]):
        status, code = "down", 503
    elif any(q["workers"] == 0 for q in queues.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return Status(code, {"status": status, "database": database, "redis": broker, "queues": queues})
