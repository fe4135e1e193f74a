"""The channel layer of the project: channels-redis over Redis pub/sub, riding out outages.

Workers publish each message straight to the call's channel, and each web
process reads all of its calls' messages from one subscribed connection. The
list-based ``RedisChannelLayer`` instead queues every message of a process's
calls in one sorted set that it drains with four Redis round trips per
message: at 50 callers on a 2-core box a transcript waited 8.7 s (p50)
behind other calls' messages there, against 0.15 s over pub/sub
(docs/benchmarks.md). Pub/sub keeps nothing for a channel nobody listens to,
which costs nothing here: a call's channel lives exactly as long as its
socket, and a reconnecting caller gets a new one.

A Redis outage: the subscribed connection reconnects and subscribes again by
itself (channels-redis polls it every second meanwhile), and a ``send`` is
retried for about a second, so a restart of Redis costs the turns in flight,
not the calls.
"""

import asyncio
import logging
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
# A send is retried over about a second: a Redis failover or restart that
# quick goes unnoticed; a longer outage fails the send, and so the task.
SEND_RETRY_DELAYS_S = (0.1, 0.3, 0.6)


class ResilientRedisChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer whose send retries through a short outage."""

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        layer = self._get_layer()  # this event loop's layer, as the base class's proxy picks
        for delay in SEND_RETRY_DELAYS_S:
            try:
                return await layer.send(channel, message)
            except OUTAGE_ERRORS as exc:
                logger.warning("channel layer send to %s failed: %s; retrying", channel, exc)
                await asyncio.sleep(delay)
        return await layer.send(channel, message)
