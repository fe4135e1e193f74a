"""Twilio Media Streams at ``/ws/telephony/twilio/``: the phone transport.

A thin adapter over the call core (calls/core.py), speaking Media Streams as
Twilio does. It consumes Twilio's ``connected``, ``start`` (whose
``customParameters`` must carry the session id and the single-use token the
voice webhook issued, else the socket closes 4401), ``media`` (base64 μ-law
8 kHz, decoded and handed to the core as PCM16), ``dtmf`` (a keypad press,
handed to the dialog as a turn), ``mark`` (the caller heard that sentence) and
``stop`` (the caller hung up). It produces ``media`` (the reply as base64
μ-law 8 kHz with the ``streamSid``), a ``mark`` after each sentence and
``clear`` on barge-in. The core saves of a barged-in turn only the sentences
whose mark came back: what the caller actually heard. When the agent ends the
call (a farewell, idle) the phone call is hung up through Twilio's REST API;
when a transfer route handed it over (the ``handoff`` event), the call is
updated with ``<Dial>`` TwiML instead, so the caller is connected to that
number (or hung up, should Twilio refuse the transfer).
"""

import base64
import binascii
import json
import logging
from typing import Any

from asgiref.sync import sync_to_async

from calls.consumers import CoreConsumer
from calls.core import CallCore
from calls.protocol import Close

from ..tickets import STREAM_TICKET
from .audio import FRAME_BYTES, PHONE_RATE, PhoneEncoder, from_phone
from .twilio import FINAL_STATUSES, hang_up, transfer

logger = logging.getLogger(__name__)

# Ends of a call Twilio already knows about (the caller's `stop`, a final
# status callback): no REST hang-up is needed.
CALLER_ENDED = frozenset({"hangup", *FINAL_STATUSES})


def keypad_text(digit: str) -> str:
    """How a keypad press reaches the dialog: as a short typed turn."""
    return f"The caller pressed {digit} on the keypad."


class TwilioMediaStreamConsumer(CoreConsumer):
    # Twilio returns each mark once the audio before it has been played.
    confirms_playback = True
    stream_sid = ""
    call_sid = ""
    encoder: PhoneEncoder | None = None
    ended_reason = ""
    handoff_to = ""  # the number a transfer route handed the call to

    # --- Transport (what the core calls) -------------------------------------------

    async def send_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "interrupted":
            # Barge-in: Twilio drops the audio it still holds and returns its marks.
            self.encoder = None
            await self._send_twilio({"event": "clear"})
        elif kind == "audio.end" and self.encoder is not None:
            await self._send_media(self.encoder.encode(b"", last=True))
            self.encoder = None
        elif kind == "handoff":
            self.handoff_to = str(event["to"])
        elif kind == "ended":
            self.ended_reason = event["reason"]
        elif kind == "error":
            logger.info("call %s: %s (%s)", self.call_sid, event["code"], event["message"])

    async def send_audio(self, pcm: bytes, sample_rate: int) -> None:
        if self.encoder is None or self.encoder.rate != sample_rate:
            self.encoder = PhoneEncoder(sample_rate)
        await self._send_media(self.encoder.encode(pcm))

    async def sentence_sent(self, turn_id: int, sentence: int) -> None:
        await self._send_twilio({"event": "mark", "mark": {"name": f"{turn_id}:{sentence}"}})

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if self.ended_reason and self.ended_reason not in CALLER_ENDED and self.call_sid:
            # The agent ended the call: hand it over, or put the phone down, not just the stream.
            transferred = self.handoff_to and await sync_to_async(transfer, thread_sensitive=False)(
                self.call_sid, self.handoff_to
            )
            if not transferred:
                await sync_to_async(hang_up, thread_sensitive=False)(self.call_sid)
        await super().close(code=code, reason=reason)

    async def _send_twilio(self, message: dict[str, Any]) -> None:
        await self.send(json.dumps({**message, "streamSid": self.stream_sid}))

    async def _send_media(self, mulaw: bytes) -> None:
        for start in range(0, len(mulaw), FRAME_BYTES):
            payload = base64.b64encode(mulaw[start : start + FRAME_BYTES]).decode("ascii")
            await self._send_twilio({"event": "media", "media": {"payload": payload}})

    # --- the socket ----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
            event = message["event"]
        except (ValueError, TypeError, KeyError):
            logger.warning("Media Streams: not a Twilio message: %.80r", text_data or bytes_data)
            return
        core = self.core
        if event == "start":
            await self._start(message)
        elif core is None or not core.admitted or core.ended:
            return
        elif event == "media":
            await core.guarded(self._media(core, message))
        elif event == "dtmf":
            digit = str(message.get("dtmf", {}).get("digit", ""))[:1]
            if digit:
                await core.guarded(core.text(keypad_text(digit)))
        elif event == "mark":
            self._mark(core, str(message.get("mark", {}).get("name", "")))
        elif event == "stop":
            await core.hang_up()

    async def _start(self, message: dict[str, Any]) -> None:
        """Admit the stream with the webhook's token, then run the call."""
        if self.core is not None:
            return  # one start per stream
        start = message.get("start") or {}
        params = start.get("customParameters") or {}
        session_id = str(params.get("session_id", ""))
        if await STREAM_TICKET.redeem(params.get("token"), session_id) is None:
            logger.warning("Media Streams: refused a stream for session %r", session_id)
            await super().close(code=Close.NOT_AUTHENTICATED)
            return
        self.stream_sid = str(message.get("streamSid") or start.get("streamSid", ""))
        self.call_sid = str(start.get("callSid", ""))
        core = CallCore(session_id, self.channel_name, self)
        code = await core.admit(None)  # the token is bound to this session
        self.core = core
        if code is not None:
            await super().close(code=code, reason=core.refusal or None)
            return
        core.set_input_rate(PHONE_RATE)
        await core.start()

    async def _media(self, core: CallCore, message: dict[str, Any]) -> None:
        try:
            mulaw = base64.b64decode(message["media"]["payload"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            logger.warning("Media Streams: a media message without valid audio")
            return
        await core.audio(from_phone(mulaw))

    def _mark(self, core: CallCore, name: str) -> None:
        turn, _, sentence = name.partition(":")
        if turn.isdigit() and sentence.isdigit():
            core.playback_reached(int(turn), int(sentence))
