"""Per-user quotas: how much of the shared pipeline one user may hold.

* **Live calls at once** (``VOICE_MAX_ACTIVE_CALLS_PER_USER``). Starting a
  session counts the user's active sessions in the database, under a lock on
  the user's row so two concurrent starts count each other; a session nobody
  ends is ended by the housekeeping task, and its owner can always end it.
  Admitting a socket counts the user's other sessions that hold a live
  connection (their Redis presence keys, calls/presence.py): a web process
  that dies stops refreshing its keys, so its calls stop counting within
  ``PRESENCE_TTL_S`` and nobody stays locked out.
* **Sessions started per hour** (``VOICE_SESSIONS_PER_HOUR``) and **caller
  turns per minute** (``VOICE_TURNS_PER_MINUTE``): sliding windows in Redis,
  one sorted set of start times per user, shared by every web process; one
  Lua script drops the expired entries, counts and records atomically, on
  Redis's clock.

A quota of 0 is no limit. docs/api.md#quotas is the operator's and client's view.
"""

import logging
import math
import uuid
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.contrib.auth import get_user_model
from redis.exceptions import RedisError

from voiceproj.errors import QuotaExceeded
from voiceproj.pipeline import session_starts_key, turn_starts_key

from .models import CallSession

logger = logging.getLogger(__name__)

# The stable ``code`` of a REST refusal (429).
ACTIVE_CALLS = "too_many_active_calls"
SESSIONS_PER_HOUR = "too_many_sessions_per_hour"
# The protocol's ``error`` code for a quota reached on a live call (calls/protocol.py).
QUOTA_ERROR = "quota_exceeded"

HOUR_S = 3600
MINUTE_S = 60
# Starting a session waits on this Redis call; past it the hour's count is skipped.
REDIS_TIMEOUT_S = 3.0

# KEYS[1]: the window's sorted set. ARGV: limit, window in ms, a unique member.
# Returns 0 when the use was recorded, else the ms until the oldest use leaves
# the window (always > 0: entries that old were just removed).
_TAKE_SLOT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now
"""


def _slot_args(key: str, limit: int, window_s: int) -> tuple[Any, ...]:
    return (_TAKE_SLOT, 1, key, limit, window_s * 1000, uuid.uuid4().hex)


def _wait_s(wait_ms: int) -> int:
    return max(1, math.ceil(wait_ms / 1000))


# --- starting a session -----------------------------------------------------------


def active_calls_exceeded(limit: int) -> QuotaExceeded:
    return QuotaExceeded(
        ACTIVE_CALLS,
        f"You already have {limit} active calls, the most one user may have at once. "
        "End one of them first.",
    )


def count_session_start(user: Any) -> None:
    """Raise QuotaExceeded if ``user`` may not start another call now; else count the start.

    Call it inside the transaction that creates the session: it locks the
    user's row until then, so concurrent starts of one user wait for each other.
    """
    limit = settings.VOICE_MAX_ACTIVE_CALLS_PER_USER
    if limit:
        get_user_model().objects.select_for_update().only("pk").get(pk=user.pk)
        active = CallSession.objects.filter(user=user, status=CallSession.Status.ACTIVE)
        if active.count() >= limit:
            raise active_calls_exceeded(limit)
    per_hour = settings.VOICE_SESSIONS_PER_HOUR
    if not per_hour:
        return
    key = session_starts_key(user.pk)
    try:
        with redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        ) as client:
            wait_ms = int(client.eval(*_slot_args(key, per_hour, HOUR_S)))
    except RedisError as exc:
        # The live-call limit above still holds, and no call runs without
        # Redis anyway: starting the session beats refusing everyone.
        logger.warning("Calls per hour of user %s not counted: %s", user.pk, exc)
        return
    if wait_ms:
        wait_s = _wait_s(wait_ms)
        raise QuotaExceeded(
            SESSIONS_PER_HOUR,
            f"You started {per_hour} calls within the last hour, the most allowed. "
            f"Try again in {math.ceil(wait_s / 60)} min.",
            retry_after_s=wait_s,
        )


# --- a live call ----------------------------------------------------------------


def other_active_sessions(session: CallSession) -> list[str]:
    """Ids of the owner's other active sessions: the calls that may hold a live socket."""
    others = CallSession.objects.filter(user_id=session.user_id, status=CallSession.Status.ACTIVE)
    return [str(pk) for pk in others.exclude(pk=session.pk).values_list("pk", flat=True)]


async def take_turn(client: aioredis.Redis, user_id: int) -> QuotaExceeded | None:
    """Count a caller turn of ``user_id``; the refusal when the minute's quota is spent."""
    limit = settings.VOICE_TURNS_PER_MINUTE
    if not limit:
        return None
    wait_ms = int(await client.eval(*_slot_args(turn_starts_key(user_id), limit, MINUTE_S)))
    if not wait_ms:
        return None
    wait_s = _wait_s(wait_ms)
    return QuotaExceeded(
        QUOTA_ERROR,
        f"This account's calls took {limit} turns within the last minute, the most allowed; "
        f"this turn was not answered. Try again in {wait_s} s.",
        retry_after_s=wait_s,
    )
