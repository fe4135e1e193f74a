"""The current turn id of each call, kept in Redis.

The consumer starts a turn with :func:`begin_turn` (a new utterance, a typed
turn, or a barge-in); workers call :func:`is_current` before work and between
streamed chunks, and stop when their turn has gone stale.
"""

from functools import lru_cache

import redis
import redis.asyncio as aioredis
from django.conf import settings

# A call idle this long has ended anyway; the key must not outlive it forever.
TURN_KEY_TTL_S = 24 * 3600


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


async def begin_turn(client: aioredis.Redis, session_id: str) -> int:
    """Make a new turn current for the session and return its id (1, 2, ...)."""
    key = turn_key(session_id)
    turn_id = int(await client.incr(key))
    await client.expire(key, TURN_KEY_TTL_S)
    return turn_id
