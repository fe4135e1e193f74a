"""The current turn id of each call and the claims of turn tasks, kept in Redis.

The consumer starts a turn with :func:`begin_turn` (a new utterance, a typed
turn, a barge-in or a failed turn); workers call :func:`is_current` before work
and between streamed chunks, and stop when their turn has gone stale.

Turn ids never go backwards: Redis may lose the counter (a restart of a Redis
that keeps no data), so the consumer passes the highest id it knows of (its
own, and the saved turns') as a floor. A reused id would overwrite a saved turn.

:func:`claim_task` makes every turn task run at most once: Celery redelivers a
job whose worker died (after the broker's visibility timeout), and by then the
caller has been told the turn failed and heard the fallback line.
"""

from functools import lru_cache

import redis
import redis.asyncio as aioredis
from django.conf import settings

# A call idle this long has ended anyway; the key must not outlive it forever.
TURN_KEY_TTL_S = 24 * 3600
# Longer than the broker's visibility timeout, so a redelivery always finds it.
TASK_CLAIM_TTL_S = 3600

# INCR, then lift the result above the floor when the counter was lost.
_BEGIN = """
local turn = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if turn <= floor then
  turn = floor + 1
  redis.call('SET', KEYS[1], turn)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return turn
"""
# The current id, raised to the floor (a reconnect after Redis lost the counter).
_RESUME = """
local turn = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if turn < floor then
  turn = floor
  redis.call('SET', KEYS[1], turn)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return turn
"""


def turn_key(session_id: str) -> str:
    return f"voice:turn:{session_id}"


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
    return bool(_client().set(f"voice:task:{task_id}", "1", nx=True, ex=TASK_CLAIM_TTL_S))


async def begin_turn(client: aioredis.Redis, session_id: str, floor: int) -> int:
    """Make a new turn current for the session and return its id, above ``floor``."""
    return int(await client.eval(_BEGIN, 1, turn_key(session_id), floor, TURN_KEY_TTL_S))


async def resume_turn(client: aioredis.Redis, session_id: str, floor: int) -> int:
    """The session's current turn id, at least ``floor`` (the highest saved one)."""
    return int(await client.eval(_RESUME, 1, turn_key(session_id), floor, TURN_KEY_TTL_S))
