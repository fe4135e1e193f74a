"""Sending worker results to the consumer through the Redis channel layer.

Consumes: ``send(channel_name, message)`` calls from any worker thread.
Produces: channel-layer messages (docs/pipeline.md) on the consumer's channel.

channels-redis is asyncio-only. ``async_to_sync(layer.send)`` per message
starts an event loop and a Redis connection each time (7.3 ms per send on a
2-core box); one event loop living in a background thread for the life of the
worker process keeps its connection pool warm (2.7 ms). Messages from one
thread are sent in call order because each ``send`` waits for its delivery.
"""

import asyncio
import os
import threading
from concurrent.futures import Future
from typing import Any

from channels.layers import get_channel_layer

# A send that takes longer than this means Redis is gone; the task fails
# loudly rather than hanging the worker.
SEND_TIMEOUT_S = 10.0


class Relay:
    """A channel layer driven by a private event loop in a daemon thread."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._layer = get_channel_layer()
        self._thread = threading.Thread(target=self._loop.run_forever, name="relay", daemon=True)
        self._thread.start()

    def send(self, channel_name: str, message: dict[str, Any]) -> None:
        """Deliver ``message`` to ``channel_name``; returns once Redis has it."""
        future: Future[None] = asyncio.run_coroutine_threadsafe(
            self._layer.send(channel_name, message), self._loop
        )
        future.result(timeout=SEND_TIMEOUT_S)


_relay: Relay | None = None
_lock = threading.Lock()


def get_relay() -> Relay:
    """The process's relay, started on first use (again in a forked child: the
    parent's loop thread does not survive a fork)."""
    global _relay
    with _lock:
        if _relay is None or _relay.pid != os.getpid():
            _relay = Relay()
        return _relay


def send(channel_name: str, message: dict[str, Any]) -> None:
    get_relay().send(channel_name, message)
