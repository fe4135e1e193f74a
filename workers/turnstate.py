"""The worker side of a call's turn state in Redis: is a job's turn current,
and has this task run before.

The call moves the current turn id (calls/turnids.py); workers call
:func:`is_current` before work and between streamed chunks, and stop when
their turn has gone stale.

:func:`claim_task` makes every turn task run at most once: Celery redelivers a
job whose worker died (after the broker's visibility timeout), and by then the
caller has been told the turn failed and heard the fallback line.
"""

from functools import lru_cache

import redis
from django.conf import settings

from voiceproj.pipeline import task_claim_key, turn_key

# Longer than the broker's visibility timeout, so a redelivery always finds it.
TASK_CLAIM_TTL_S = 3600


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def current_turn(session_id: str) -> int:
    value = _client().get(turn_key(session_id))
    return int(value) if value is not None else 0


def is_current(session_id: str, turn_id: int) -> bool:
    return current_turn(session_id) == turn_id


def claim_task(task_id: str) -> bool:
    """True the first time a task id is claimed; False on a redelivery."""
    return bool(_client().set(task_claim_key(task_id), "1", nx=True, ex=TASK_CLAIM_TTL_S))
