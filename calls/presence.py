"""Which call sessions have a live WebSocket right now, kept in Redis.

One key per session holds the channel name of its connection with a TTL that
the consumer refreshes, so a second connection is refused (4409) and a crashed
daphne process frees its sessions within ``PRESENCE_TTL_S``. Compare-and-set
scripts make sure a connection only ever refreshes or removes its own claim.
"""

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
