"""The call core: one call's behaviour, apart from any transport.

:class:`CallCore` holds everything a call does whatever carries it: input
limits, endpointing (VAD), turn control and barge-in, the ordering of the
reply, the timers (presence, idle, the per-turn watchdog) and what is saved.
A transport adapter (protocol v1 in calls/consumers.py, Twilio Media Streams
in calls/telephony/) converts its own frames into calls on the core — audio,
text, interrupt, hang-up, DTMF — and implements :class:`Transport`, through
which the core speaks back: protocol-v1-shaped events, reply audio, the end of
each sentence's audio, and closing. Workers' channel-layer messages
(voiceproj/pipeline.py) reach the core through :meth:`CallCore.on_pipeline`.

Session ends: ``hang_up`` (reason ``hangup``), a farewell (``farewell``), no
caller or agent speech for VOICE_IDLE_TIMEOUT_S (``idle``), the session ended
elsewhere (its own reason), and a disconnect not followed by a reconnect
within VOICE_DISCONNECT_GRACE_S (``disconnected``). The grace period is an
asyncio timer in the web process rather than a Celery ETA task: it needs no
worker, fires on time, and a reconnect to the same process cancels it; a
reconnect to another process is seen through the Redis presence key the timer
checks before ending the session.

Nothing a turn depends on may leave the caller waiting in silence
(docs/reliability.md): the watchdog fails a turn whose workers went silent, a
worker's failure report does the same at once, and either way the caller gets
``error`` ``turn_failed`` and then the fallback line. Redis or database
outages answer ``service_unavailable`` and the call goes on.

A call whose agent records calls is recorded here too, whatever the
transport: the core hands calls/recording.py the caller's audio as it arrives,
the reply audio as it goes out, each barge-in and each turn's start, and
stores the file when the connection ends (docs/recordings.md).

The owner's quotas (calls/quotas.py) apply here, whatever the transport: a
connection beyond their live calls at once is refused (4429), and a caller
turn beyond their turns per minute is answered ``quota_exceeded``, not run.
"""

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.db.models import Max
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from voiceproj.celery import app as celery_app
from voiceproj.logcontext import CallLogger
from voiceproj.metrics import ERRORS, TURNS, observe_turn
from voiceproj.pipeline import (
    EARLY_TRANSCRIBE_TASK,
    FALLBACK_LINE,
    SPEAK_TASK,
    TASK_QUEUES,
    TEXT_TURN_TASK,
    TRANSCRIBE_TASK,
    Job,
)

from . import presence, quotas
from .calldb import call_db
from .models import CallSession
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
    frame_ms,
)
from .recording import CallRecorder, store
from .services import end_session
from .turnend import ends_thought
from .turnids import begin_turn, resume_turn
from .turns import deliver_agent_turn
from .vad import (
    VAD_RATE,
    Endpointer,
    Resampler,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    VadSettings,
)

logger = logging.getLogger(__name__)

# One rate_limited error per second at most: answering every dropped frame
# would turn an inbound flood into an outbound one.
RATE_LIMIT_REPORT_S = 1.0
# Error answers per second (burst twice that); more bad input is dropped unanswered.
ERRORS_PER_S = 10.0
# Audio bursts of up to this long are accepted at once (a client catching up).
BURST_AUDIO_S = 2.0
# Timings only the workers measure, merged into the call's metrics event.
WORKER_TIMINGS = ("stt_ms", "classify_ms", "first_token_ms")
# How often the watchdog looks at the turn: a small fraction of its bounds.
WATCHDOG_TICK_S = 0.25
# A publish to the broker runs in a thread; past this the turn is not started.
PUBLISH_TIMEOUT_S = 5.0
# Redis calls of the call fail fast: a caller is waiting on each.
REDIS_TIMEOUT_S = 3.0
# Reply audio goes out in pieces of at most this many bytes (an even number,
# so no sample is split): far below the transport's message limit whatever
# chunk size a TTS engine produces.
MAX_AUDIO_PIECE = 64 * 1024
# A call the agent ends (farewell, transfer) over a transport that confirms
# playback waits at most this long past the end of its last audio for the
# confirmation that the caller heard it.
HEARD_MARGIN_S = 5.0
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


class Transport(Protocol):
    """What the core needs from the connection that carries a call."""

    # True when the transport tells the core which sentences the caller has
    # heard (Twilio's marks); otherwise a sentence counts as heard once its
    # audio all went out.
    confirms_playback: bool

    async def send_event(self, event: dict[str, Any]) -> None:
        """A protocol-v1 event (``{"type": ..., ...}``); the transport maps or drops it."""

    async def send_audio(self, pcm: bytes, sample_rate: int) -> None:
        """Reply audio: PCM16 mono at ``sample_rate``."""

    async def sentence_sent(self, turn_id: int, sentence: int) -> None:
        """All audio of ``sentence`` of turn ``turn_id``'s reply was passed on."""

    async def close(self, code: int) -> None:
        """End the connection (after an ``ended`` event, or a refusal)."""


def connect_redis() -> aioredis.Redis:
    return aioredis.from_url(
        settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )


@call_db
def _load_session(session_id: str) -> tuple[CallSession, int, bool] | None:
    """The session, its highest saved turn id and whether any turn was saved."""
    session = CallSession.objects.select_related("agent").filter(pk=session_id).first()
    if session is None:
        return None
    last = session.turns.aggregate(last=Max("turn_id"))["last"]
    return session, last or 0, last is not None


_other_active_sessions = call_db(quotas.other_active_sessions)


@call_db
def _session_state(session_id: str) -> tuple[str, str]:
    """The session's status and end reason; a session deleted under the call
    (its owner's account deleted) reads as ended, so the call closes at once."""
    state = CallSession.objects.values_list("status", "end_reason").filter(pk=session_id).first()
    return state or (CallSession.Status.ENDED, "deleted")


@call_db
def _end_session(session_id: str, reason: str) -> None:
    session = CallSession.objects.filter(pk=session_id).first()
    if session is not None:
        end_session(session, reason)


async def _end_after_grace(session_id: str) -> None:
    """End the session unless a connection claimed it again within the grace period."""
    try:
        await asyncio.sleep(settings.VOICE_DISCONNECT_GRACE_S)
        client = connect_redis()
        try:
            if not await presence.is_live(client, session_id):
                await _end_session(session_id, "disconnected")
        finally:
            await client.aclose()
    finally:
        if _grace_timers.get(session_id) is asyncio.current_task():
            del _grace_timers[session_id]


class CallCore:
    """One call: admitted by :meth:`admit`, run by :meth:`start`, left by :meth:`stop`."""

    def __init__(
        self,
        session_id: str,
        channel_name: str,
        transport: Transport,
        publish: Callable[..., object] = celery_app.send_task,
    ) -> None:
        self.session_id = session_id
        self.channel_name = channel_name
        self.transport = transport
        self.log = CallLogger(logger, self)
        self.publish = publish  # Celery's send_task of the app whose broker the workers read
        self.redis = connect_redis()
        self.admitted = False
        self.refusal = ""  # why admit refused the call, for the close frame
        self.ended = False
        self.background: list[asyncio.Task[None]] = []
        self.reply: Reply | None = None
        self.recorder: CallRecorder | None = None  # when the agent records its calls
        self.playing_until = 0.0  # monotonic time the caller's playback should end
        self.last_activity = time.monotonic()
        self.audio_received = False
        self.rate_limit_reported = 0.0
        self.error_bucket = TokenBucket(ERRORS_PER_S, 2 * ERRORS_PER_S)
        self.message_bucket = TokenBucket(
            settings.VOICE_MAX_MESSAGES_PER_S, 2 * settings.VOICE_MAX_MESSAGES_PER_S
        )
        self.endpointer = Endpointer(VadSettings.from_django())
        self.set_input_rate(settings.VOICE_INPUT_SAMPLE_RATE)

    # --- lifecycle ----------------------------------------------------------------

    async def admit(self, user_id: int | None) -> int | None:
        """Check the session (and its owner, when ``user_id`` is given) and claim
        it for this connection; a close code when the call cannot be served."""
        try:
            uuid.UUID(self.session_id)
        except ValueError:
            return Close.NOT_FOUND
        try:
            loaded = await _load_session(self.session_id)
            if loaded is None:
                return Close.NOT_FOUND
            session, last_saved_turn, any_saved = loaded
            if user_id is not None and session.user_id != user_id:
                return Close.FORBIDDEN
            if session.status != CallSession.Status.ACTIVE:
                return Close.CONFLICT
            refusal = await self._claim(session)
            if refusal is not None:
                return refusal
            self.user_id = session.user_id
            self.agent = session.agent.pipeline_config()
            # A scenario run has no caller on the line: nothing worth keeping.
            self.record = (
                session.agent.record_calls and session.channel != CallSession.Channel.SCENARIO
            )
            # Saved turns are the floor: Redis may have lost the counter (restart).
            self.turn_id = await resume_turn(self.redis, self.session_id, last_saved_turn)
        except SERVICE_ERRORS as exc:
            self.log.warning("session %s: admission failed: %s", self.session_id, exc)
            await self.report("service_unavailable", "Try again in a moment.")
            return Close.SERVER_ERROR
        self.greet = self.turn_id == 0 and not any_saved
        self.admitted = True
        return None

    async def _claim(self, session: CallSession) -> int | None:
        """Become the call's one live connection, within the owner's live-call quota."""
        limit = settings.VOICE_MAX_ACTIVE_CALLS_PER_USER
        others = await _other_active_sessions(session) if limit else []
        claim = await presence.claim_within(
            self.redis, self.session_id, self.channel_name, others, limit
        )
        if claim is presence.Claim.HELD_ELSEWHERE:
            return Close.CONFLICT
        if claim is presence.Claim.OVER_LIMIT:
            self.refusal = quotas.active_calls_exceeded(limit).message
            await self.report(quotas.QUOTA_ERROR, self.refusal)
            return Close.QUOTA_EXCEEDED
        return None

    async def start(self) -> None:
        """Greet the caller (once per session) and start the call's timers."""
        timer = _grace_timers.pop(self.session_id, None)
        if timer is not None:
            timer.cancel()
        if self.record:
            try:
                self.recorder = CallRecorder.for_session(self.session_id)
            except OSError as exc:
                # A full or read-only spool disk costs the recording, not the call.
                self.log.error("session %s: cannot record the call: %s", self.session_id, exc)
        await self.transport.send_event(
            {
                "type": "ready",
                "session_id": self.session_id,
                "agent": {"id": self.agent["id"], "name": self.agent["name"]},
                "input": {"encoding": AUDIO_ENCODING, "sample_rate": self.input_rate},
                "output": {
                    "encoding": AUDIO_ENCODING,
                    "sample_rate": settings.VOICE_OUTPUT_SAMPLE_RATE,
                },
            }
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

    async def stop(self) -> None:
        """The connection is gone: stop the workers, keep what was said, release the call."""
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
            if self.recorder is not None:
                await self._safely(self._store_recording(self.recorder), "storing the recording")
        await self._safely(self.redis.aclose(), "closing Redis")

    async def _store_recording(self, recorder: CallRecorder) -> None:
        """Close the recording and hand it to the storage (an upload may take a
        while: in a thread of its own, not the one the database calls share)."""
        self.recorder = None
        finished = recorder.finish()
        await database_sync_to_async(store, thread_sensitive=False)(self.session_id, finished)

    async def end(self, reason: str) -> None:
        """End the session: make in-flight work stale, persist, tell the caller, close."""
        if self.ended:
            return
        self.ended = True
        await self._safely(self._new_turn(notify=False), "stopping the agent")
        await self._safely(_end_session(self.session_id, reason), "saving the end")
        await self.transport.send_event({"type": "ended", "reason": reason})
        await self.transport.close(Close.NORMAL)

    async def _safely(self, step: Awaitable[object], what: str) -> None:
        """Await a cleanup step; its failure is logged so the next step still runs."""
        try:
            await step
        except Exception:
            self.log.exception("session %s: %s failed", self.session_id, what)

    async def _every(self, period: float, check: Callable[[], Awaitable[None]]) -> None:
        """Run ``check`` every ``period`` until the call ends; a failed check is retried."""
        while not self.ended:
            await asyncio.sleep(period)
            try:
                await check()
            except Exception:
                # Redis or the database hiccuped: the call goes on, retry next time.
                self.log.exception("session %s: %s failed", self.session_id, check.__name__)

    async def _heartbeat(self) -> None:
        """Keep the presence claim alive; notice a session ended elsewhere."""
        if not await presence.refresh(self.redis, self.session_id, self.channel_name):
            # Redis lost the claim (a restart): take it again.
            await presence.claim(self.redis, self.session_id, self.channel_name)
        status, reason = await _session_state(self.session_id)
        if status != CallSession.Status.ACTIVE and not self.ended:
            self.ended = True
            await self._safely(self._new_turn(notify=False), "stopping the agent")
            await self.transport.send_event({"type": "ended", "reason": reason or status})
            await self.transport.close(Close.NORMAL)

    async def _idle_check(self) -> None:
        """End the call after VOICE_IDLE_TIMEOUT_S without caller or agent speech.

        A silent microphone stream does not count as activity: browsers and
        phones send audio all the time, so only speech, text and the agent do.
        """
        if self.agent_busy() or self.endpointer.in_speech:
            self.last_activity = time.monotonic()
        elif time.monotonic() - self.last_activity >= settings.VOICE_IDLE_TIMEOUT_S:
            await self.end("idle")

    async def _watchdog(self) -> None:
        """Fail the turn whose workers went silent (docs/reliability.md)."""
        reply = self.reply
        stall_s, queue_s = settings.VOICE_TURN_STALL_S, settings.VOICE_TURN_QUEUE_S
        if reply is not None and reply.overdue(time.monotonic(), stall_s, queue_s):
            await self._fail_turn(reply, "The agent's workers stopped answering this turn.")

    # --- caller input -------------------------------------------------------------

    async def report(self, code: str, message: str) -> None:
        """An ``error`` event, up to a budget: a client stuck in a loop of bad
        input must not turn the call into an error firehose."""
        if self.error_bucket.take():
            await self._send_error(code, message)

    async def _send_error(self, code: str, message: str) -> None:
        ERRORS.labels(code=code).inc()
        await self.transport.send_event({"type": "error", "code": code, "message": message})

    async def guarded(self, step: Awaitable[None]) -> None:
        """Run one input of the caller; bad input or a failure is answered, never fatal."""
        try:
            await step
        except ProtocolError as exc:
            await self.report(exc.code, exc.message)
        except SERVICE_ERRORS as exc:
            self.log.warning("session %s: a service failed on input: %s", self.session_id, exc)
            await self.report("service_unavailable", "A service is unavailable; try again.")
        except Exception:
            self.log.exception("session %s: failed on input", self.session_id)
            await self.report("internal_error", "The server failed on that input.")

    async def take_message(self) -> bool:
        """Count a control message against the flood limit; False if it must be dropped."""
        if self.message_bucket.take():
            return True
        await self._rate_limited("Too many messages per second.")
        return False

    def set_input_rate(self, rate: int) -> None:
        """The sample rate of the caller's audio; only before the first audio."""
        if self.audio_received:
            raise ProtocolError("already_started", "Send `start` before the first audio.")
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
            await self._send_error("rate_limited", message)

    async def audio(self, frame: bytes) -> None:
        """Caller audio: PCM16 mono at the input rate, 10–1000 ms."""
        if self.ended:
            return
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
        pcm = self.resampler(frame)
        if self.recorder is not None:
            self.recorder.caller(pcm)
        for vad_event in self.endpointer.feed(pcm):
            if isinstance(vad_event, SpeechStarted):
                await self._new_turn()
                self._mark(self.turn_id, "user")
                self.last_activity = time.monotonic()
                await self.transport.send_event({"type": "speech.started", "turn_id": self.turn_id})
            elif isinstance(vad_event, SpeechPaused):
                await self._early_transcript(vad_event)
            elif isinstance(vad_event, SpeechEnded):
                await self._utterance(vad_event)

    async def _early_transcript(self, paused: SpeechPaused) -> None:
        """Have the utterance so far transcribed while the endpointer waits for
        the rest of its silence (``workers.stt.transcribe_early``).

        Only a head start: if it cannot be sent, the end of the utterance sends
        its audio to be transcribed as usual.
        """
        try:
            await self._send_task(
                EARLY_TRANSCRIBE_TASK,
                audio=base64.b64encode(paused.audio).decode("ascii"),
                sample_rate=VAD_RATE,
                pause=paused.pause,
            )
        except SERVICE_ERRORS as exc:
            self.log.warning("session %s: early transcript not started: %s", self.session_id, exc)

    async def _utterance(self, utterance: SpeechEnded) -> None:
        self.last_activity = time.monotonic()
        await self.transport.send_event({"type": "speech.stopped", "turn_id": self.turn_id})
        if not await self._turn_allowed():
            return
        self.reply = Reply(turn_id=self.turn_id, t0=time.time())
        # The audio goes along even when a pause's transcript covers it: the
        # STT worker transcribes it itself if that transcript never comes.
        early = {} if utterance.pause is None else {"early_pause": utterance.pause}
        await self._start_task(
            TRANSCRIBE_TASK,
            audio=base64.b64encode(utterance.audio).decode("ascii"),
            sample_rate=VAD_RATE,
            **early,
        )

    async def text(self, text: str) -> None:
        """A typed turn (or a keypad press), answered without STT."""
        if self.ended:
            return
        text = check_text(text, settings.VOICE_MAX_TEXT_CHARS)
        # Checked before the barge-in: a refused turn leaves the agent talking.
        if not await self._turn_allowed():
            return
        if self.endpointer.in_speech:
            # The caller typed while talking: the typed turn wins.
            self.endpointer.flush()
        await self._new_turn()
        self._mark(self.turn_id, "user")
        self.last_activity = time.monotonic()
        self.reply = Reply(turn_id=self.turn_id, t0=time.time())
        await self._start_task(TEXT_TURN_TASK, text=text)

    async def _turn_allowed(self) -> bool:
        """Count a caller turn against the owner's turns per minute; a turn over
        the quota is answered with ``quota_exceeded`` and not run."""
        refusal = await quotas.take_turn(self.redis, self.user_id)
        if refusal is None:
            return True
        await self.report(refusal.code, refusal.message)
        return False

    async def interrupt(self) -> None:
        """Stop the agent now (barge-in without speech)."""
        if not self.ended and self.agent_busy():
            await self._new_turn()

    async def hang_up(self) -> None:
        await self.end("hangup")

    def playback_reached(self, turn_id: int, sentence: int) -> None:
        """The caller heard ``sentence`` of turn ``turn_id`` (transports that confirm playback)."""
        reply = self.reply
        if reply is not None and reply.turn_id == turn_id:
            reply.heard_through(sentence)

    # --- turns --------------------------------------------------------------------

    def agent_busy(self) -> bool:
        """The agent is answering or the caller is still hearing its audio.

        An answer always finishes: the watchdog fails a turn whose workers
        went silent, so the call can still idle out.
        """
        answering = self.reply is not None and not self.reply.finished
        return answering or time.monotonic() < self.playing_until

    async def _stop_agent(self) -> None:
        if self.agent_busy():
            await self._new_turn(notify=False)

    async def _new_turn(self, notify: bool = True) -> None:
        """Make a new turn current; barge in on the agent if it is answering.

        Workers of the old turn stop at their next ``is_current`` check; the
        agent turn is saved with only what the caller heard. ``notify=False``
        skips the caller events (the connection is already gone).
        """
        old_reply = self.reply
        busy = self.agent_busy()
        self.turn_id = await begin_turn(self.redis, self.session_id, floor=self.turn_id)
        self.reply = None
        if not busy:
            return
        self.playing_until = 0.0
        if self.recorder is not None:
            self.recorder.barge_in()
        turn = old_reply.turn_id if old_reply else 0
        TURNS.labels(outcome="interrupted").inc()
        if notify:
            await self.transport.send_event({"type": "interrupted", "turn_id": turn})
        if old_reply is None or not (old_reply.audio_started or old_reply.finished):
            return
        # A delivered reply still playing: all of it went out, and unless the
        # transport confirms playback that is all the core knows of it.
        delivered = old_reply.finished and not self.transport.confirms_playback
        text = old_reply.text if delivered else old_reply.heard_text
        if notify and not old_reply.finished:
            await self.transport.send_event(
                {"type": "response.done", "turn_id": turn, "text": text, "interrupted": True}
            )
        try:
            await call_db(deliver_agent_turn)(self.session_id, turn, text, interrupted=True)
        except SERVICE_ERRORS as exc:
            # The new turn must not be lost with it.
            self.log.warning("session %s: interrupted turn not saved: %s", self.session_id, exc)

    async def _start_task(self, name: str, **extra: Any) -> None:
        """Hand the current turn to the workers; if that fails, the caller is told."""
        reply = self.reply
        try:
            await self._send_task(name, **extra)
        except SERVICE_ERRORS as exc:
            self.log.warning("session %s: could not start %s: %s", self.session_id, name, exc)
            await self.report("service_unavailable", "The agent cannot answer now.")
            if reply is not None and not reply.finished:
                reply.line = reply.line or FALLBACK_LINE
                await self._deliver(reply)

    async def _send_task(self, name: str, **extra: Any) -> None:
        job: Job = {
            "session_id": self.session_id,
            "channel_name": self.channel_name,
            "turn_id": self.turn_id,
            "agent": self.agent,
            "t0": self.reply.t0 if self.reply else time.time(),
        }
        # In a thread: a stalled Redis must not freeze every call of this process.
        publish = asyncio.to_thread(
            self.publish, name, args=[job], kwargs=extra, queue=TASK_QUEUES[name]
        )
        await asyncio.wait_for(publish, PUBLISH_TIMEOUT_S)
        self.log.info("session %s: turn %s sent to %s", self.session_id, self.turn_id, name)

    async def _fail_turn(self, reply: Reply, message: str) -> None:
        """The turn's work was lost: tell the caller, then say the fallback line.

        The failed turn's workers are made stale (a new turn id), and the
        fallback is spoken under that id while the caller keeps seeing the
        failed turn's id. A fixed line that fails is shown as text only.
        """
        if reply.finished or reply is not self.reply:
            return
        reply.finished = True
        self.log.warning(
            "session %s: turn %s failed: %s",
            self.session_id,
            reply.turn_id,
            message,
            extra={"turn_id": reply.turn_id},
        )
        TURNS.labels(outcome="failed").inc()
        await self._send_error("turn_failed", message)
        if reply.line is not None:
            await self._deliver(reply)
            return
        fallback = Reply(
            turn_id=reply.turn_id,
            t0=reply.t0,
            line=FALLBACK_LINE,
            said_before=reply.heard_text,
            sample_rate=reply.sample_rate,
            audio_started=reply.audio_started,
            first_audio_at=reply.first_audio_at,
            timings=reply.timings,
        )
        self.reply = fallback
        await self.transport.send_event(
            {"type": "response.delta", "turn_id": reply.turn_id, "text": FALLBACK_LINE}
        )
        try:
            self.turn_id = await begin_turn(self.redis, self.session_id, floor=self.turn_id)
        except SERVICE_ERRORS as exc:
            self.log.warning("session %s: cannot start the fallback: %s", self.session_id, exc)
            await self.report("service_unavailable", "The agent cannot speak now.")
            await self._deliver(fallback)
            return
        await self._start_task(SPEAK_TASK, text=FALLBACK_LINE)

    # --- worker messages ----------------------------------------------------------

    async def on_pipeline(self, message: dict[str, Any]) -> None:
        """A worker's channel-layer message (voiceproj/pipeline.py); a failure
        while relaying it fails the turn, never the call."""
        try:
            if message.get("type") == "pipeline.words":
                await self._on_words(message)
                return
            handler = self._PIPELINE_HANDLERS.get(message.get("type", ""))
            reply = self._reply_for(message)
            if handler is not None and reply is not None:
                await handler(self, reply, message)
        except Exception:
            self.log.exception(
                "session %s: relaying %s failed", self.session_id, message.get("type")
            )
            if self.reply is not None:
                await self._fail_turn(self.reply, "The server failed while relaying the reply.")

    async def _on_words(self, message: dict[str, Any]) -> None:
        """The words of a pause, while the caller may still be speaking: shown
        as an interim transcript, and they may end the utterance now."""
        if self.ended or message.get("turn_id") != self.turn_id or self.reply is not None:
            return  # a stale turn, or this utterance has already ended
        text = str(message.get("text", ""))
        if text:
            interim = {"type": "transcript", "turn_id": self.turn_id, "text": text}
            await self.transport.send_event({**interim, "final": False, "early": True})
        ended = self.endpointer.words_heard(int(message["pause"]), ends_thought(text))
        if ended is not None:
            await self._utterance(ended)

    def _reply_for(self, message: dict[str, Any]) -> Reply | None:
        """The reply a worker message belongs to; None for stale turns (dropped)."""
        if self.ended or message.get("turn_id") != self.turn_id:
            return None
        if self.reply is None:
            self.reply = Reply(turn_id=self.turn_id, t0=time.time())
        self.reply.updated = time.monotonic()
        return self.reply

    async def _on_event(self, reply: Reply, message: dict[str, Any]) -> None:
        if reply.finished:
            return
        wire_event = message["event"]
        if wire_event.get("type") == "error":
            ERRORS.labels(code=str(wire_event.get("code"))).inc()
        if wire_event.get("type") == "metrics":
            # Merged into the one metrics event sent when the reply is delivered.
            reply.timings.update(
                {k: v for k, v in wire_event.items() if k in WORKER_TIMINGS and v is not None}
            )
            return
        await self.transport.send_event(wire_event)

    async def _on_progress(self, reply: Reply, message: dict[str, Any]) -> None:
        reply.progress(str(message["task"]), bool(message["running"]))

    async def _on_turn_failed(self, reply: Reply, message: dict[str, Any]) -> None:
        stage = str(message.get("task", "")).split(".")[1:2] or ["pipeline"]
        reason = message.get("reason", "an error")
        await self._fail_turn(reply, f"The {stage[0]} worker failed on this turn ({reason}).")

    async def _on_audio(self, reply: Reply, message: dict[str, Any]) -> None:
        if reply.finished:
            return
        reply.sample_rate = int(message["sample_rate"])
        await self._send_audio(reply, reply.add_audio(int(message["sentence"]), message["pcm"]))

    async def _on_sentence_done(self, reply: Reply, message: dict[str, Any]) -> None:
        if reply.finished:
            return
        before = reply.next_sentence
        chunks = reply.sentence_done(int(message["sentence"]), message.get("text", ""))
        await self._send_audio(reply, chunks)
        for sentence in range(before, reply.next_sentence):
            await self._sentence_out(reply, sentence)
        await self._finish_if_complete(reply)

    async def _on_reply_done(self, reply: Reply, message: dict[str, Any]) -> None:
        if reply.finished:
            return
        reply.final = message
        await self._finish_if_complete(reply)

    _PIPELINE_HANDLERS: dict[
        str, Callable[["CallCore", Reply, dict[str, Any]], Awaitable[None]]
    ] = {
        "pipeline.event": _on_event,
        "pipeline.progress": _on_progress,
        "pipeline.turn_failed": _on_turn_failed,
        "pipeline.audio": _on_audio,
        "pipeline.sentence_done": _on_sentence_done,
        "pipeline.reply_done": _on_reply_done,
    }

    async def _sentence_out(self, reply: Reply, sentence: int) -> None:
        """All of a sentence's audio went out: it is heard, or the transport will say when."""
        await self.transport.sentence_sent(reply.turn_id, sentence)
        if not self.transport.confirms_playback:
            reply.heard_through(sentence)

    async def _send_audio(self, reply: Reply, chunks: list[bytes]) -> None:
        for chunk in chunks:
            if not reply.audio_started:
                reply.audio_started = True
                reply.first_audio_at = time.time()
                self._mark(reply.turn_id, "agent")
                await self.transport.send_event(
                    {
                        "type": "audio.start",
                        "turn_id": reply.turn_id,
                        "sample_rate": reply.sample_rate,
                    }
                )
            for start in range(0, len(chunk), MAX_AUDIO_PIECE):
                await self.transport.send_audio(
                    chunk[start : start + MAX_AUDIO_PIECE], reply.sample_rate
                )
            if self.recorder is not None:
                self.recorder.agent(chunk, reply.sample_rate)
            duration = len(chunk) / BYTES_PER_SAMPLE / reply.sample_rate
            self.playing_until = max(self.playing_until, time.monotonic()) + duration

    def _mark(self, turn_id: int, speaker: str) -> None:
        """Note where a turn begins in the recording, if the call is recorded."""
        if self.recorder is not None:
            self.recorder.mark(turn_id, speaker)

    async def _finish_if_complete(self, reply: Reply) -> None:
        if reply.complete and not reply.finished:
            await self._deliver(reply)

    async def _deliver(self, reply: Reply) -> None:
        """Close the reply: audio.end, response.done, the saved turn, metrics."""
        reply.finished = True
        text = reply.text
        if reply.audio_started:
            await self.transport.send_event({"type": "audio.end", "turn_id": reply.turn_id})
        await self.transport.send_event(
            {"type": "response.done", "turn_id": reply.turn_id, "text": text, "interrupted": False}
        )
        first_audio_ms = (
            round((reply.first_audio_at - reply.t0) * 1000) if reply.first_audio_at else None
        )
        total_ms = round((time.time() - reply.t0) * 1000)
        try:
            await call_db(deliver_agent_turn)(
                self.session_id,
                reply.turn_id,
                text,
                first_audio_ms=first_audio_ms,
                total_ms=total_ms,
            )
        except SERVICE_ERRORS as exc:
            self.log.warning("session %s: the reply was not saved: %s", self.session_id, exc)
            await self.report("service_unavailable", "The reply could not be saved.")
        timings = {name: reply.timings.get(name) for name in WORKER_TIMINGS}
        timings.update(first_audio_ms=first_audio_ms, total_ms=total_ms)
        observe_turn(timings)
        self.log.info(
            "session %s: turn %s delivered in %s ms",
            self.session_id,
            reply.turn_id,
            total_ms,
            extra={"turn_id": reply.turn_id},
        )
        TURNS.labels(outcome="fallback" if reply.line == FALLBACK_LINE else "answered").inc()
        await self.transport.send_event({"type": "metrics", "turn_id": reply.turn_id, **timings})
        self.last_activity = time.monotonic()
        final = reply.final or {}
        if not final.get("end_call"):
            return
        reason = str(final.get("end_reason") or "farewell")
        if self.transport.confirms_playback:
            # Not awaited here: the marks that confirm playback arrive meanwhile.
            self.background.append(asyncio.create_task(self._end_when_heard(reply, reason)))
        else:  # the client already has all the audio
            await self.end(reason)

    async def _end_when_heard(self, reply: Reply, reason: str) -> None:
        """End the call once the caller heard the reply that ends it.

        A phone call hung up or transferred through Twilio's REST API the
        moment its last audio went out would cut off the goodbye (or the
        "please hold") that Twilio is still playing.
        """
        deadline = self.playing_until + HEARD_MARGIN_S
        while not self.ended and reply.heard < len(reply.spoken) and time.monotonic() < deadline:
            await asyncio.sleep(WATCHDOG_TICK_S)
        await self.end(reason)
