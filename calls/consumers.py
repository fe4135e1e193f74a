"""Protocol v1 of ``/ws/voice/<session_id>/``: the browser and SDK transport.

A thin adapter over the call core (calls/core.py): it authenticates the
socket (calls/auth.py put the user in the scope), turns binary frames and JSON
control messages (docs/protocol.md) into calls on the core, relays the
workers' ``pipeline.*`` channel-layer messages to it, and writes what the core
says back as JSON events and binary PCM16 frames.
"""

import contextlib
import json
from typing import Any

from autobahn.exception import Disconnected
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from .auth import user_for_ticket
from .core import CallCore
from .protocol import Close, parse_message


class CoreConsumer(AsyncWebsocketConsumer):
    """A socket that carries one call: workers' messages go to its core."""

    core: CallCore | None = None

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        """Send to the client; once daphne is closing the socket, the message is dropped.

        Input is answered in order, so an answer may follow a message the
        transport refused, or the client's own close: the disconnect is queued
        behind that input. daphne (autobahn) then raises ``Disconnected``; let
        out, it would end the consumer before ``disconnect`` stops the call,
        and the call would keep its session claimed.
        """
        with contextlib.suppress(Disconnected):
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def disconnect(self, code: int) -> None:
        if self.core is not None:
            await self.core.stop()
        raise StopConsumer()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Workers' ``pipeline.*`` messages go to the core, the socket's frames to
        ``websocket_receive``; the rest to the handlers."""
        kind = message.get("type", "")
        if kind.startswith("pipeline."):
            if self.core is not None and self.core.admitted:
                await self.core.on_pipeline(message)
            return
        if kind == "websocket.receive":
            # Channels' dispatch runs close_old_connections in the thread pool
            # before every message: a thread hop per 20 ms audio frame, about a
            # quarter of daphne's CPU under load (docs/benchmarks.md). A frame
            # reaches the database only through calls/calldb.py, which closes
            # stale connections around each call by itself.
            await self.websocket_receive(message)
            return
        await super().dispatch(message)


class VoiceConsumer(CoreConsumer):
    # Protocol v1 has no playback receipts: a sentence is heard once it went out.
    confirms_playback = False

    # --- Transport (what the core calls) ---------------------------------------------

    async def send_event(self, event: dict[str, Any]) -> None:
        await self.send(json.dumps(event))

    async def send_audio(self, pcm: bytes, sample_rate: int) -> None:
        await self.send(bytes_data=pcm)

    async def sentence_sent(self, turn_id: int, sentence: int) -> None:
        """Nothing to tell a v1 client: it plays audio in the order it arrives."""

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        await super().close(code=code, reason=reason)

    # --- the socket -----------------------------------------------------------------

    async def connect(self) -> None:
        # Accept first: close codes only reach the client on an open socket.
        await self.accept()
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        user = self.scope.get("user")
        if self.scope.get("auth") == "ticket":
            user = await user_for_ticket(self.scope["ticket"], session_id)
        if user is None or not user.is_authenticated:
            await self.close(code=Close.NOT_AUTHENTICATED)
            return
        core = CallCore(session_id, self.channel_name, self)
        code = await core.admit(user.pk)
        self.core = core
        if code is not None:
            await self.close(code=code, reason=core.refusal or None)
            return
        await core.start()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        core = self.core
        if core is None or not core.admitted or core.ended:
            return
        if bytes_data is not None:
            await core.guarded(core.audio(bytes_data))
        elif text_data is not None:
            await core.guarded(self._on_message(core, text_data))

    async def _on_message(self, core: CallCore, text: str) -> None:
        if not await core.take_message():
            return
        message = parse_message(text)
        kind = message["type"]
        if kind == "ping":
            await self.send_event({"type": "pong"})
        elif kind == "start":
            core.set_input_rate(message["sample_rate"])
        elif kind == "text":
            await core.text(message["text"])
        elif kind == "interrupt":
            await core.interrupt()
        elif kind == "end":
            await core.hang_up()
