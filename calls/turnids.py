"""The call's side of its turn ids in Redis: start a turn, resume after a reconnect.

The greeting is turn 0; every new utterance, typed turn, barge-in or failed
turn begins the next id, which makes every job of earlier turns stale
(workers/turnstate.py checks it). Turn ids never go backwards: Redis may lose
the counter (a restart of a Redis that keeps no data), so the call passes the
highest id it knows of (its own, and the saved turns') as a floor. A reused id
would overwrite a saved turn.
"""

import redis.asyncio as aioredis

from voiceproj.pipeline import turn_key

# A call idle this long has ended anyway; the key must not outlive it forever.
TURN_KEY_TTL_S = 24 * 3600

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


async def begin_turn(client: aioredis.Redis, session_id: str, floor: int) -> int:
    """Make a new turn current for the session and return its id, above ``floor``."""
    return int(await client.eval(_BEGIN, 1, turn_key(session_id), floor, TURN_KEY_TTL_S))


async def resume_turn(client: aioredis.Redis, session_id: str, floor: int) -> int:
    """The session's current turn id, at least ``floor`` (the highest saved one)."""
    return int(await client.eval(_RESUME, 1, turn_key(session_id), floor, TURN_KEY_TTL_S))
