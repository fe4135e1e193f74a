"""Which call sessions have a live WebSocket right now, kept in Redis.

One key per session holds the channel name of its connection with a TTL that
the consumer refreshes, so a second connection is refused (4409) and a crashed
daphne process frees its sessions within ``PRESENCE_TTL_S``. Compare-and-set
scripts make sure a connection only ever refreshes or removes its own claim.
The same keys count a user's live calls (calls/quotas.py): a claim can be
refused because too many of the user's other sessions hold one.
"""

from collections.abc import Sequence
from enum import Enum

import redis.asyncio as aioredis

from voiceproj.pipeline import greeted_key, presence_key

# Short enough that a reconnect after a daphne crash works within half a
# minute; the consumer refreshes the claim every third of it.
PRESENCE_TTL_S = 30
GREETED_TTL_S = 24 * 3600

_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1]: the session's key; KEYS[2..]: the keys of the owner's other sessions.
# ARGV: channel name, TTL, the most live calls (0: no limit).
# Returns 1 (claimed), 0 (another connection holds it), -1 (over the limit).
_CLAIM_WITHIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local limit = tonumber(ARGV[3])
if limit > 0 and #KEYS > 1 and redis.call('EXISTS', unpack(KEYS, 2)) >= limit then
  return -1
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


class Claim(Enum):
    TAKEN = 1
    HELD_ELSEWHERE = 0
    OVER_LIMIT = -1


async def claim_within(
    client: aioredis.Redis,
    session_id: str,
    channel_name: str,
    other_sessions: Sequence[str],
    limit: int,
) -> Claim:
    """Become the session's one live connection unless another holds it or
    ``limit`` of ``other_sessions`` (the owner's) are live already; atomic."""
    keys = [presence_key(session_id), *(presence_key(other) for other in other_sessions)]
    result = await client.eval(_CLAIM_WITHIN, len(keys), *keys, channel_name, PRESENCE_TTL_S, limit)
    return Claim(int(result))


async def claim(client: aioredis.Redis, session_id: str, channel_name: str) -> bool:
    """Become the session's one live connection; False when another holds it."""
    return bool(
        await client.set(presence_key(session_id), channel_name, nx=True, ex=PRESENCE_TTL_S)
    )


async def refresh(client: aioredis.Redis, session_id: str, channel_name: str) -> bool:
    key = presence_key(session_id)
    return bool(await client.eval(_REFRESH, 1, key, channel_name, PRESENCE_TTL_S))


async def release(client: aioredis.Redis, session_id: str, channel_name: str) -> None:
    await client.eval(_RELEASE, 1, presence_key(session_id), channel_name)


async def is_live(client: aioredis.Redis, session_id: str) -> bool:
    return bool(await client.exists(presence_key(session_id)))


async def first_greeting(client: aioredis.Redis, session_id: str) -> bool:
    """True exactly once per session: a reconnect must not greet the caller again."""
    key = greeted_key(session_id)
    return bool(await client.set(key, "1", nx=True, ex=GREETED_TTL_S))
