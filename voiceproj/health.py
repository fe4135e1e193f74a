"""``GET /api/health``: can this web process reach its database, Redis and workers?

Answers 503 when the database or Redis is down (a load balancer should take the
process out of rotation); missing Celery workers only make the status
``degraded``, because the API still works without them.
"""

from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from ninja import Router, Schema, Status

from voiceproj.celery import ALL_QUEUES, app

router = Router(tags=["health"])

# Short enough that a health probe never hangs on a dead dependency, long enough
# for a busy worker to answer a broadcast on a loaded machine.
REDIS_TIMEOUT_S = 1.0
INSPECT_TIMEOUT_S = 0.5


class Check(Schema):
    ok: bool
    error: str | None = None


class QueueStatus(Schema):
    workers: int


class HealthOut(Schema):
    status: str
    database: Check
    redis: Check
    queues: dict[str, QueueStatus]


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # any driver error means "down"
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}


def check_redis() -> dict[str, Any]:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
    )
    try:
        client.ping()
        return {"ok": True}
    except redis.RedisError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
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
        pass
    return {queue: {"workers": n} for queue, n in counts.items()}


@router.get("/health", response={200: HealthOut, 503: HealthOut}, auth=None)
def health(request: HttpRequest):  # type: ignore[no-untyped-def]
    database, cache = check_database(), check_redis()
    queues = worker_counts() if cache["ok"] else {q: {"workers": 0} for q in ALL_QUEUES}
    if not (database["ok"] and cache["ok"]):
        status, code = "down", 503
    elif any(q["workers"] == 0 for q in queues.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return Status(code, {"status": status, "database": database, "redis": cache, "queues": queues})
