"""The channel layer of the project: channels-redis that rides out a Redis outage.

channels-redis raises ``ConnectionError`` from ``receive`` while Redis is
down. A consumer's receive loop is part of its socket: Channels lets the
exception end the consumer, and daphne drops the caller's connection without a
close frame. This layer keeps receiving (the pool reconnects by itself once
Redis is back) and retries a failed ``send`` for a moment, so a restart of
Redis costs the turns in flight, not the calls.
"""

import asyncio
import logging
from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
# Receive polls a down Redis at most this often: fast enough that a call
# notices the way back within a second, slow enough to cost nothing meanwhile.
RECEIVE_RETRY_S = 0.5
# A send is retried over about a second: a Redis failover or restart that
# quick goes unnoticed; a longer outage fails the send, and so the task.
SEND_RETRY_DELAYS_S = (0.1, 0.3, 0.6)


class ResilientRedisChannelLayer(RedisChannelLayer):
    """RedisChannelLayer whose receive waits out outages and whose send retries."""

    async def receive(self, channel: str) -> dict[str, Any]:
        while True:
            try:
                return await super().receive(channel)
            except OUTAGE_ERRORS as exc:
                logger.warning("channel layer receive on %s failed: %s; retrying", channel, exc)
                await asyncio.sleep(RECEIVE_RETRY_S)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        for delay in SEND_RETRY_DELAYS_S:
            try:
                return await super().send(channel, message)
            except OUTAGE_ERRORS as exc:
                logger.warning("channel layer send to %s failed: %s; retrying", channel, exc)
                await asyncio.sleep(delay)
        return await super().send(channel, message)
