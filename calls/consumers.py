"""VoiceConsumer: one caller's WebSocket at ``/ws/voice/<session_id>/``.

Consumes the client's PCM16 frames and JSON control messages (wire protocol
v1, docs/protocol.md) and the workers' ``pipeline.*`` channel-layer messages
(docs/pipeline.md). Produces wire events and binary audio for the client, and
Celery tasks (by name, so this process never imports engine code) for each
utterance, typed turn and greeting.

Session ends: ``end`` (reason ``hangup``), a farewell (``farewell``), no caller
or agent speech for VOICE_IDLE_TIMEOUT_S (``idle``), the session ended through
the API (its own reason), and a disconnect not followed by a reconnect within
VOICE_DISCONNECT_GRACE_S (``disconnected``). The grace period is an asyncio
timer in the daphne process rather than a Celery ETA task: it needs no worker
on the ``default`` queue, fires on time (Redis-transport ETA tasks are held in
worker memory and redelivered after the visibility timeout), and a reconnect
to the same process simply cancels it; a reconnect to another process is seen
through the Redis presence key the timer checks before ending the session.

Nothing a turn depends on may leave the caller waiting in silence
(docs/reliability.md): a per-turn watchdog fails a turn whose workers went
silent, a worker's failure report does the same at once, and either way the
caller gets ``error`` ``turn_failed`` and then the fallback line. Redis or
database outages answer ``service_unavailable`` and the call goes on; every
handler is guarded, so one failure never leaves the socket half-dead.
"""

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.db.models import Max
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from voiceproj.celery import app as celery_app
from voiceproj.pipeline import (
    FALLBACK_LINE,
    SPEAK_TASK,
    TASK_QUEUES,
    TEXT_TURN_TASK,
    TRANSCRIBE_TASK,
)
from workers.turnstate import begin_turn, resume_turn

from . import presence
from .models import CallSession, Turn
from .playback import Reply
from .protocol import (
    AUDIO_ENCODING,
    BYTES_PER_SAMPLE,
    MIN_FRAME_MS,
    Close,
    ProtocolError,
    TokenBucket,
    check_frame,
    check_text,
    error_event,
    event,
    frame_ms,
    parse_message,
)
from .services import end_session
from .turns import finish_agent_turn, history, record_turn
from .vad import VAD_RATE, Endpointer, Resampler, SpeechEnded, SpeechStarted, VadSettings

logger = logging.getLogger(__name__)

# One rate_limited error per second at most: answering every dropped frame
# would turn an inbound flood into an outbound one.
RATE_LIMIT_REPORT_S = 1.0
# Error answers per second (burst twice that); more bad input is dropped unanswered.
ERRORS_PER_S = 10.0
# Audio bursts of up to this long are accepted at once (a client catching up).
BURST_AUDIO_S = 2.0

# Timings only the workers measure; the consumer adds first_audio_ms and total_ms.
WORKER_TIMINGS = ("stt_ms", "classify_ms", "first_token_ms")
# How often the watchdog looks at the turn: a small fraction of its bounds.
WATCHDOG_TICK_S = 0.25
# A publish to the broker runs in a thread; past this the turn is not started.
PUBLISH_TIMEOUT_S = 5.0
# Redis calls of the consumer fail fast: a caller is waiting on each.
REDIS_TIMEOUT_S = 3.0
# Failures of the services a call depends on, as opposed to bugs.
SERVICE_ERRORS = (
    RedisError,
    BrokerError,
    DatabaseOperationalError,
    DatabaseInterfaceError,
    OSError,
    TimeoutError,
)

_grace_timers: dict[str, asyncio.Task[None]] = {}


def _redis() -> aioredis.Redis:
    return aioredis.from_url(
        settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )


@database_sync_to_async
def _load_session(session_id: str) -> tuple[CallSession, int, bool] | None:
    """The session, its highest saved turn id and whether any turn was saved."""
    session = CallSession.objects.select_related("agent").filter(pk=session_id).first()
    if session is None:
        return None
    last = session.turns.aggregate(last=Max("turn_id"))["last"]
    return session, last or 0, last is not None


@database_sync_to_async
def _session_state(session_id: str) -> tuple[str, str]:
    return CallSession.objects.values_list("status", "end_reason").get(pk=session_id)


@database_sync_to_async
def _end_session(session_id: str, reason: str) -> None:
    session = CallSession.objects.filter(pk=session_id).first()
    if session is not None:
        end_session(session, reason)


async def _end_after_grace(session_id: str) -> None:
    """End the session unless a connection claimed it again within the grace period."""
    try:
        await asyncio.sleep(settings.VOICE_DISCONNECT_GRACE_S)
        client = _redis()
        try:
            if not await presence.is_live(client, session_id):
                await _end_session(session_id, "disconnected")
        finally:
            await client.aclose()
    finally:
        if _grace_timers.get(session_id) is asyncio.current_task():
            del _grace_timers[session_id]


class VoiceConsumer(AsyncWebsocketConsumer):
    session_id: str
    redis: aioredis.Redis
    admitted = False
    ended = False

    # --- connection lifecycle -------------------------------------------------

    async def connect(self) -> None:
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        self.background: list[asyncio.Task[None]] = []
        self.redis = _redis()
        # Accept first: close codes only reach the client on an open socket.
        await self.accept()
        try:
            code = await self._admit()
        except SERVICE_ERRORS as exc:
            logger.warning("session %s: admission failed: %s", self.session_id, exc)
            await self.send(error_event("service_unavailable", "Try again in a moment."))
            code = Close.SERVER_ERROR
        if code is not None:
            await self.close(code=code)
            return
        self.admitted = True
        timer = _grace_timers.pop(self.session_id, None)
        if timer is not None:
            timer.cancel()

        self.input_rate = settings.VOICE_INPUT_SAMPLE_RATE
        self._set_input_rate(self.input_rate)
        self.endpointer = Endpointer(VadSettings.from_django())
        self.audio_received = False
        self.message_bucket = TokenBucket(
            settings.VOICE_MAX_MESSAGES_PER_S, 2 * settings.VOICE_MAX_MESSAGES_PER_S
        )
        self.rate_limit_reported = 0.0
        self.error_bucket = TokenBucket(ERRORS_PER_S, 2 * ERRORS_PER_S)
        self.reply: Reply | None = None
        self.playing_until = 0.0  # monotonic time the client's playback should end
        self.last_activity = time.monotonic()

        await self.send(
            event(
                "ready",
                session_id=self.session_id,
                agent={"id": self.agent["id"], "name": self.agent["name"]},
                input={"encoding": AUDIO_ENCODING, "sample_rate": self.input_rate},
                output={
                    "encoding": AUDIO_ENCODING,
                    "sample_rate": settings.VOICE_OUTPUT_SAMPLE_RATE,
                },
            )
        )
        idle_tick = min(1.0, settings.VOICE_IDLE_TIMEOUT_S / 4)
        self.background += [
            asyncio.create_task(self._every(presence.PRESENCE_TTL_S / 3, self._heartbeat)),
            asyncio.create_task(self._every(idle_tick, self._idle_check)),
            asyncio.create_task(self._every(WATCHDOG_TICK_S, self._watchdog)),
        ]
        greeting = self.agent["greeting"].strip()
        if greeting and self.greet and await presence.first_greeting(self.redis, self.session_id):
            self.reply = Reply(turn_id=0, t0=time.time(), line=greeting)
            await self._start_task(SPEAK_TASK, text=greeting)

    async def _admit(self) -> int | None:
        """Check auth, ownership and state; claim the session. A close code on refusal."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return Close.NOT_AUTHENTICATED
        try:
            uuid.UUID(self.session_id)
        except ValueError:
            return Close.NOT_FOUND
        loaded = await _load_session(self.session_id)
        if loaded is None:
            return Close.NOT_FOUND
        session, last_saved_turn, any_saved = loaded
        if session.user_id != user.pk:
            return Close.FORBIDDEN
        if session.status != CallSession.Status.ACTIVE:
            return Close.CONFLICT
        if not await presence.claim(self.redis, self.session_id, self.channel_name):
            return Close.CONFLICT
        self.agent = session.agent.pipeline_config()
        # Saved turns are the floor: Redis may have lost the counter (restart).
        self.turn_id = await resume_turn(self.redis, self.session_id, last_saved_turn)
        self.greet = self.turn_id == 0 and not any_saved
        return None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run a handler; a failure is logged and answered, never fatal to the socket."""
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:
            kind = message.get("type", "")
            logger.exception("session %s: handling %s failed", self.session_id, kind)
            if kind == "websocket.disconnect":
                raise StopConsumer() from None
            if kind.startswith("pipeline.") and self.reply is not None:
                await self._fail_turn(self.reply, "The server failed while relaying the reply.")

    async def disconnect(self, code: int) -> None:
        if self.admitted:
            for task in self.background:
                task.cancel()
            if not self.ended:
                await self._safely(self._stop_agent(), "saving the interrupted turn")
            # Released last: a reconnect must not race this connection's last writes.
            await self._safely(
                presence.release(self.redis, self.session_id, self.channel_name),
                "releasing the session",
            )
            if not self.ended:
                _grace_timers[self.session_id] = asyncio.create_task(
                    _end_after_grace(self.session_id)
                )
        await self._safely(self.redis.aclose(), "closing Redis")

    async def _safely(self, step: Awaitable[object], what: str) -> None:
        """Await a cleanup step; its failure is logged so the next step still runs."""
        try:
            await step
        except Exception:
            logger.exception("session %s: %s failed", self.session_id, what)

    async def _end(self, reason: str) -> None:
        """End the session: make in-flight work stale, persist, tell the client, close 1000."""
        if self.ended:
            return
        self.ended = True
        await self._safely(self._new_turn(notify=False), "stopping the agent")
        await self._safely(_end_session(self.session_id, reason), "saving the end")
        await self.send(event("ended", reason=reason))
        await self.close(code=Close.NORMAL)

    async def _every(self, period: float, check: Callable[[], Awaitable[None]]) -> None:
        """Run ``check`` every ``period`` until the call ends; a failed check is retried."""
        while not self.ended:
            await asyncio.sleep(period)
            try:
                await check()
            except Exception:
                # Redis or the database hiccuped: the call goes on, retry next time.
                logger.exception("session %s: %s failed", self.session_id, check.__name__)

    async def _heartbeat(self) -> None:
        """Keep the presence claim alive; notice a session ended through the API."""
        if not await presence.refresh(self.redis, self.session_id, self.channel_name):
            # Redis lost the claim (a restart): take it again.
            await presence.claim(self.redis, self.session_id, self.channel_name)
        status, reason = await _session_state(self.session_id)
        if status != CallSession.Status.ACTIVE and not self.ended:
            self.ended = True
            await self._safely(self._new_turn(notify=False), "stopping the agent")
            await self.send(event("ended", reason=reason or status))
            await self.close(code=Close.NORMAL)

    async def _idle_check(self) -> None:
        """End the call after VOICE_IDLE_TIMEOUT_S without caller or agent speech.

        A silent microphone stream does not count as activity: browsers send
        audio frames all the time, so only speech, text and the agent talking do.
        """
        if self._agent_busy() or self.endpointer.in_speech:
            self.last_activity = time.monotonic()
        elif time.monotonic() - self.last_activity >= settings.VOICE_IDLE_TIMEOUT_S:
            await self._end("idle")

    async def _watchdog(self) -> None:
        """Fail the turn whose workers went silent (docs/reliability.md)."""
        reply = self.reply
        stall_s, queue_s = settings.VOICE_TURN_STALL_S, settings.VOICE_TURN_QUEUE_S
        if reply is not None and reply.overdue(time.monotonic(), stall_s, queue_s):
            await self._fail_turn(reply, "The agent's workers stopped answering this turn.")

    # --- client input -----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.ended or not self.admitted:
            return
        try:
            if bytes_data is not None:
                await self._on_audio(bytes_data)
            elif text_data is not None:
                await self._on_message(text_data)
        except ProtocolError as exc:
            # Errors are answered up to a budget: a client stuck in a loop of bad
            # input must not turn the socket into an error firehose.
            await self._answer_error(exc.code, exc.message)
        except SERVICE_ERRORS as exc:
            logger.warning("session %s: a service failed on client input: %s", self.session_id, exc)
            await self._answer_error("service_unavailable", "A service is unavailable; try again.")
        except Exception:
            # One bad message must not take the call down with it.
            logger.exception("session %s: failed on client input", self.session_id)
            await self._answer_error("internal_error", "The server failed on that input.")

    async def _answer_error(self, code: str, message: str) -> None:
        if self.error_bucket.take():
            await self.send(error_event(code, message))

    async def _on_message(self, text: str) -> None:
        if not self.message_bucket.take():
            await self._rate_limited("Too many messages per second.")
            return
        message = parse_message(text)
        kind = message["type"]
        if kind == "ping":
            await self.send(event("pong"))
        elif kind == "start":
            if self.audio_received:
                raise ProtocolError("already_started", "Send `start` before the first audio.")
            self._set_input_rate(message["sample_rate"])
        elif kind == "text":
            await self._text_turn(check_text(message["text"], settings.VOICE_MAX_TEXT_CHARS))
        elif kind == "interrupt":
            if self._agent_busy():
                await self._new_turn()
        elif kind == "end":
            await self._end("hangup")

    def _set_input_rate(self, rate: int) -> None:
        self.input_rate = rate
        self.resampler = Resampler(rate)
        bytes_per_s = rate * BYTES_PER_SAMPLE
        speedup = settings.VOICE_MAX_AUDIO_SPEEDUP
        self.byte_bucket = TokenBucket(bytes_per_s * speedup, bytes_per_s * BURST_AUDIO_S)
        frames_per_s = 1000 / MIN_FRAME_MS
        self.frame_bucket = TokenBucket(frames_per_s * speedup, frames_per_s * BURST_AUDIO_S)

    async def _rate_limited(self, message: str) -> None:
        now = time.monotonic()
        if now - self.rate_limit_reported >= RATE_LIMIT_REPORT_S:
            self.rate_limit_reported = now
            await self.send(error_event("rate_limited", message))

    async def _on_audio(self, frame: bytes) -> None:
        # Count frames before validating them, so a flood of bad frames is
        # limited too; the byte budget applies to valid audio only, so an
        # oversized frame is reported as such.
        if not self.frame_bucket.take():
            await self._rate_limited("Too many audio frames per second; frames were dropped.")
            return
        check_frame(frame, self.input_rate)
        if not self.byte_bucket.take(len(frame)):
            ms = frame_ms(len(frame), self.input_rate)
            await self._rate_limited(f"Audio arrives faster than real time; dropped {ms:.0f} ms.")
            return
        self.audio_received = True
        for vad_event in self.endpointer.feed(self.resampler(frame)):
            if isinstance(vad_event, SpeechStarted):
                await self._new_turn()
                self.last_activity = time.monotonic()
                await self.send(event("speech.started", turn_id=self.turn_id))
            elif isinstance(vad_event, SpeechEnded):
                await self._utterance(vad_event)

    async def _utterance(self, utterance: SpeechEnded) -> None:
        self.last_activity = time.monotonic()
        await self.send(event("speech.stopped", turn_id=self.turn_id))
        self.reply = Reply(turn_id=self.turn_id, t0=time.time())
        await self._start_task(
            TRANSCRIBE_TASK,
            audio=base64.b64encode(utterance.audio).decode("ascii"),
            sample_rate=VAD_RATE,
        )

    async def _text_turn(self, text: str) -> None:
        if self.endpointer.in_speech:
            # The caller typed while talking: the typed turn wins.
            self.endpointer.flush()
        await self._new_turn()
        self.last_activity = time.monotonic()
        self.reply = Reply(turn_id=self.turn_id, t0=time.time())
        await self._start_task(TEXT_TURN_TASK, text=text)

    # --- turns ------------------------------------------------------------------

    def _agent_busy(self) -> bool:
        """The agent is answering or the client is still playing its audio.

        An answer always finishes: the watchdog fails a turn whose workers
        went silent, so the call can still idle out.
        """
        answering = self.reply is not None and not self.reply.finished
        return answering or time.monotonic() < self.playing_until

    async def _stop_agent(self) -> None:
        """The socket is going away: stop the workers and keep what was said."""
        if self._agent_busy():
            await self._new_turn(notify=False)

    async def _new_turn(self, notify: bool = True) -> None:
        """Make a new turn current; barge in on the agent if it is answering.

        Workers of the old turn stop at their next ``is_current`` check; the
        agent turn is saved with only the sentences whose audio all went out.
        ``notify=False`` skips the client events (the socket is already gone).
        """
        old_reply = self.reply
        busy = self._agent_busy()
        self.turn_id = await begin_turn(self.redis, self.session_id, floor=self.turn_id)
        self.reply = None
        if not busy:
            return
        self.playing_until = 0.0
        if notify:
            await self.send(event("interrupted", turn_id=old_reply.turn_id if old_reply else 0))
        if old_reply is None or not (old_reply.audio_started or old_reply.finished):
            return
        text = old_reply.text if old_reply.finished else old_reply.spoken_text
        if notify and not old_reply.finished:
            await self.send(
                event("response.done", turn_id=old_reply.turn_id, text=text, interrupted=True)
            )
        try:
            await database_sync_to_async(record_turn)(
                self.session_id, old_reply.turn_id, Turn.Speaker.AGENT, text=text, interrupted=True
            )
        except SERVICE_ERRORS as exc:
            # The new turn must not be lost with it; the workers' save stands.
            logger.warning("session %s: interrupted turn not saved: %s", self.session_id, exc)

    async def _start_task(self, name: str, **extra: Any) -> None:
        """Hand the current turn to the workers; if that fails, the caller is told."""
        reply = self.reply
        try:
            await self._send_task(name, **extra)
        except SERVICE_ERRORS as exc:
            logger.warning("session %s: could not start %s: %s", self.session_id, name, exc)
            await self.send(error_event("service_unavailable", "The agent cannot answer now."))
            if reply is not None and not reply.finished:
                reply.line = reply.line or FALLBACK_LINE
                await self._deliver(reply)

    async def _send_task(self, name: str, **extra: Any) -> None:
        past: list[dict[str, str]] = []
        if name != SPEAK_TASK:  # a fixed line needs no history
            past = await database_sync_to_async(history)(
                self.session_id, settings.VOICE_HISTORY_TURNS
            )
        job = {
            "session_id": self.session_id,
            "channel_name": self.channel_name,
            "turn_id": self.turn_id,
            "agent": self.agent,
            "history": past,
            "t0": self.reply.t0 if self.reply else time.time(),
        }
        # In a thread: a stalled Redis must not freeze every call of this process.
        publish = asyncio.to_thread(
            celery_app.send_task, name, args=[job], kwargs=extra, queue=TASK_QUEUES[name]
        )
        await asyncio.wait_for(publish, PUBLISH_TIMEOUT_S)

    async def _fail_turn(self, reply: Reply, message: str) -> None:
        """The turn's work was lost: tell the caller, then say the fallback line.

        The failed turn's workers are made stale (a new turn id), and the
        fallback is spoken under that id while the client keeps seeing the
        failed turn's id. A fixed line that fails is shown as text only.
        """
        if reply.finished or reply is not self.reply:
            return
        reply.finished = True
        logger.warning("session %s: turn %s failed: %s", self.session_id, reply.turn_id, message)
        await self.send(error_event("turn_failed", message))
        if reply.line is not None:
            await self._deliver(reply)
            return
        fallback = Reply(
            turn_id=reply.turn_id,
            t0=reply.t0,
            line=FALLBACK_LINE,
            said_before=reply.spoken_text,
            sample_rate=reply.sample_rate,
            audio_started=reply.audio_started,
            first_audio_at=reply.first_audio_at,
            timings=reply.timings,
        )
        self.reply = fallback
        await self.send(event("response.delta", turn_id=reply.turn_id, text=FALLBACK_LINE))
        try:
            self.turn_id = await begin_turn(self.redis, self.session_id, floor=self.turn_id)
        except SERVICE_ERRORS as exc:
            logger.warning("session %s: cannot start the fallback: %s", self.session_id, exc)
            await self.send(error_event("service_unavailable", "The agent cannot speak now."))
            await self._deliver(fallback)
            return
        await self._start_task(SPEAK_TASK, text=FALLBACK_LINE)

    # --- pipeline messages (channel layer) --------------------------------------

    def _reply_for(self, message: dict[str, Any]) -> Reply | None:
        """The reply a worker message belongs to; None for stale turns (dropped)."""
        if self.ended or message.get("turn_id") != self.turn_id:
            return None
        if self.reply is None:
            self.reply = Reply(turn_id=self.turn_id, t0=time.time())
        self.reply.updated = time.monotonic()
        return self.reply

    async def pipeline_event(self, message: dict[str, Any]) -> None:
        reply = self._reply_for(message)
        if reply is None or reply.finished:
            return
        wire_event = message["event"]
        if wire_event.get("type") == "metrics":
            # Merged into the one metrics event sent when the reply is delivered.
            reply.timings.update(
                {k: v for k, v in wire_event.items() if k in WORKER_TIMINGS and v is not None}
            )
            return
        await self.send(json.dumps(wire_event))

    async def pipeline_progress(self, message: dict[str, Any]) -> None:
        reply = self._reply_for(message)
        if reply is not None:
            reply.progress(str(message["task"]), bool(message["running"]))

    async def pipeline_turn_failed(self, message: dict[str, Any]) -> None:
        reply = self._reply_for(message)
        if reply is not None:
            stage = str(message.get("task", "")).split(".")[1:2] or ["pipeline"]
            reason = message.get("reason", "an error")
            await self._fail_turn(reply, f"The {stage[0]} worker failed on this turn ({reason}).")

    async def pipeline_audio(self, message: dict[str, Any]) -> None:
        reply = self._reply_for(message)
        if reply is None or reply.finished:
            return
        reply.sample_rate = int(message["sample_rate"])
        await self._send_audio(reply, reply.add_audio(int(message["sentence"]), message["pcm"]))

    async def pipeline_sentence_done(self, message: dict[str, Any]) -> None:
        reply = self._reply_for(message)
        if reply is None or reply.finished:
            return
        chunks = reply.sentence_done(int(message["sentence"]), message.get("text", ""))
        await self._send_audio(reply, chunks)
        await self._finish_if_complete(reply)

    async def pipeline_reply_done(self, message: dict[str, Any]) -> None:
        reply = self._reply_for(message)
        if reply is None or reply.finished:
            return
        reply.final = message
        await self._finish_if_complete(reply)

    async def _send_audio(self, reply: Reply, chunks: list[bytes]) -> None:
        for chunk in chunks:
            if not reply.audio_started:
                reply.audio_started = True
                reply.first_audio_at = time.time()
                await self.send(
                    event("audio.start", turn_id=reply.turn_id, sample_rate=reply.sample_rate)
                )
            await self.send(bytes_data=chunk)
            duration = len(chunk) / BYTES_PER_SAMPLE / reply.sample_rate
            self.playing_until = max(self.playing_until, time.monotonic()) + duration

    async def _finish_if_complete(self, reply: Reply) -> None:
        if reply.complete and not reply.finished:
            await self._deliver(reply)

    async def _deliver(self, reply: Reply) -> None:
        """Close the reply for the client: audio.end, response.done, saved timings, metrics."""
        reply.finished = True
        text = reply.text
        if reply.audio_started:
            await self.send(event("audio.end", turn_id=reply.turn_id))
        await self.send(event("response.done", turn_id=reply.turn_id, text=text, interrupted=False))
        first_audio_ms = (
            round((reply.first_audio_at - reply.t0) * 1000) if reply.first_audio_at else None
        )
        total_ms = round((time.time() - reply.t0) * 1000)
        timings: dict[str, int | None] = {"first_audio_ms": first_audio_ms, "total_ms": total_ms}
        try:
            timings = await database_sync_to_async(finish_agent_turn)(
                self.session_id, reply.turn_id, text, first_audio_ms, total_ms
            )
        except SERVICE_ERRORS as exc:
            logger.warning("session %s: the reply was not saved: %s", self.session_id, exc)
            await self.send(error_event("service_unavailable", "The reply could not be saved."))
        timings.update(reply.timings)
        await self.send(event("metrics", turn_id=reply.turn_id, **timings))
        self.last_activity = time.monotonic()
        if (reply.final or {}).get("end_call"):
            await self._end("farewell")
