"""The stt queue: the caller's words from one utterance of audio.

Consumes ``workers.stt.transcribe(job, audio=<base64 PCM16>, sample_rate=16000)``
from the consumer when VAD ends an utterance. Produces a ``transcript`` event
and a worker ``metrics`` event on the consumer's channel, hands the text to
the respond queue (``workers.respond.reply``) and, at the same time, to the
classify queue (``workers.classify.start_classify``), and saves the user turn
(text, ``stt_ms``) while those run, with the session locked so that the
agent's turn is saved after it. An utterance with no words ends the turn
with an empty ``reply_done`` so the consumer stops waiting; an STT failure
does the same after an ``error`` event.

Also consumes ``workers.stt.transcribe_early(job, audio=..., sample_rate=...,
pause=N)``, sent when the caller has paused (``calls.vad.SpeechPaused``,
``VOICE_STT_EARLY_MS``) before the endpointer ends the utterance; it pushes
its transcript onto a Redis list (``early_transcript_key``). When the
utterance then ends with no voice after that pause, ``transcribe`` gets
``early_pause=N`` and uses that transcript instead of decoding the same
speech again, so the caller's wait for the words mostly overlaps the silence
the endpointer waits for anyway. It also sends those words to the call
(``words_message``): an interim transcript for the caller, and the rule on
the words (``calls.turnend``) that may end the utterance before its silence
is complete.
"""

import base64
import binascii
import json
import logging
import time
from functools import lru_cache
from typing import cast

import redis
from celery import shared_task
from celery.signals import task_failure
from django.conf import settings

from calls.turns import record_turn
from voiceproj.logcontext import turn_context
from voiceproj.pipeline import (
    EARLY_TRANSCRIBE_TASK,
    TRANSCRIBE_TASK,
    AgentConfig,
    Job,
    early_claim_key,
    early_transcript_key,
    event_message,
    reply_done_message,
    words_message,
)
from workers import relay
from workers.classify import start_classify
from workers.engines import get_stt
from workers.engines.base import EngineError, Transcript
from workers.respond import reply
from workers.turnstate import is_current
from workers.turntask import TurnTask

logger = logging.getLogger(__name__)

# An early transcript outlives the turn's end by far; nobody reads it later.
EARLY_TTL_S = 60
# How long the utterance's task waits for an early transcript already being
# made. The early task started first, so it needs less than a whole decode;
# past this it is taken as lost (its process died) and the audio decoded here.
EARLY_WAIT_S = 10.0


def _event(job: Job, event: dict) -> None:
    relay.send(job["channel_name"], event_message(job, event))


def _nothing_to_answer(job: Job) -> None:
    relay.send(job["channel_name"], reply_done_message(job, text="", sentences=0))


# Enough for the name and a few examples per intent; engines cut further.
MAX_HINTS = 30


def hear(agent: AgentConfig, pcm: bytes, sample_rate: int, tag: str | None) -> Transcript:
    """The caller's words in ``pcm``, asked of the configured STT engine in the agent's language.

    The one place the stt queue (and ``bench/quality.py``) calls the engine.
    """
    return get_stt().transcribe(
        pcm, sample_rate, agent.get("language", "en"), tag=tag, hints=stt_hints(agent)
    )


def stt_hints(agent: AgentConfig) -> list[str]:
    """The agent's vocabulary for the STT engine: its name and its intents' examples.

    Callers say the agent's (often unusual) name and words like the examples;
    distinct phrases, at most :data:`MAX_HINTS`.
    """
    phrases = [agent.get("name", ""), *(e for ex in agent.get("examples", {}).values() for e in ex)]
    return list(dict.fromkeys(p.strip() for p in phrases if p.strip()))[:MAX_HINTS]


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    # One client per process, as for the classify round trip; the socket
    # timeout is past the longest wait below.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=EARLY_WAIT_S + 5)


def _claim_pause(job: Job, pause: int, claimant: str) -> bool:
    """True for whichever of the two tasks asks first for the pause's audio."""
    key = early_claim_key(job["session_id"], job["turn_id"], pause)
    return bool(_redis().set(key, claimant, nx=True, ex=EARLY_TTL_S))


def _decode(job: Job, audio: str, sample_rate: int) -> tuple[str, int]:
    """The words in base64 ``audio`` and the engine's time in ms."""
    started = time.monotonic()
    pcm = base64.b64decode(audio, validate=True)
    transcript = hear(job["agent"], pcm, sample_rate, tag=job["session_id"])
    return transcript.text.strip(), round((time.monotonic() - started) * 1000)


@shared_task(name=EARLY_TRANSCRIBE_TASK, soft_time_limit=30, time_limit=40)
def transcribe_early(job: Job, audio: str, sample_rate: int, pause: int) -> None:
    """Transcribe the utterance so far while the caller pauses; push the result.

    A head start, not a turn task: its failure fails no turn (``transcribe``
    then decodes the audio itself), and it does nothing once ``transcribe``
    has claimed the pause or the turn is over.
    """
    with turn_context(job["session_id"], job["turn_id"]):
        if not is_current(job["session_id"], job["turn_id"]) or not _claim_pause(
            job, pause, "early"
        ):
            return
        try:
            text, stt_ms = _decode(job, audio, sample_rate)
        except (binascii.Error, EngineError) as exc:
            _push_early(
                job, pause, {"error": exc.code if isinstance(exc, EngineError) else "bad_audio"}
            )
            return
        _push_early(job, pause, {"text": text, "stt_ms": stt_ms})
        relay.send(job["channel_name"], words_message(job, pause, text))


def _push_early(job: Job, pause: int, result: dict) -> None:
    key = early_transcript_key(job["session_id"], job["turn_id"], pause)
    with _redis().pipeline() as pipe:
        pipe.rpush(key, json.dumps(result))
        pipe.expire(key, EARLY_TTL_S)
        pipe.execute()


@task_failure.connect
def report_early_failure(
    sender: object = None,
    args: list | tuple | None = None,
    kwargs: dict | None = None,
    **_: object,
) -> None:
    """An early task that died (its pool process killed, a time limit) pushes an
    error, so the utterance's task decodes the audio at once instead of waiting."""
    if getattr(sender, "name", None) != EARLY_TRANSCRIBE_TASK or not args or not kwargs:
        return
    try:
        _push_early(cast(Job, args[0]), int(kwargs["pause"]), {"error": "lost"})
    except Exception:
        logger.exception("could not report a lost early transcript")


def _early_transcript(job: Job, pause: int) -> tuple[str, int] | None:
    """The early task's words for the pause, if it made (or is making) them."""
    if _claim_pause(job, pause, "final"):
        return None  # it had not started: it never will
    key = early_transcript_key(job["session_id"], job["turn_id"], pause)
    popped = _redis().blpop([key], timeout=EARLY_WAIT_S)
    if popped is None:
        logger.warning("no early transcript of pause %s within %s s", pause, EARLY_WAIT_S)
        return None
    result = json.loads(popped[1])
    if "error" in result:
        return None  # decoded again here, and reported if it fails again
    return str(result["text"]), int(result["stt_ms"])


@shared_task(name=TRANSCRIBE_TASK, base=TurnTask, soft_time_limit=30, time_limit=40)
def transcribe(job: Job, audio: str, sample_rate: int, early_pause: int | None = None) -> None:
    """Transcribe the utterance (or take its pause's early transcript), announce
    it and start the reply while it is saved."""
    early = None if early_pause is None else _early_transcript(job, early_pause)
    try:
        text, stt_ms = early or _decode(job, audio, sample_rate)
    except (binascii.Error, EngineError) as exc:
        reason = exc.code if isinstance(exc, EngineError) else "bad_audio"
        message = f"Could not transcribe the utterance ({reason})."
        _event(job, {"type": "error", "code": "pipeline_error", "message": message})
        _nothing_to_answer(job)
        return

    def announce() -> None:
        _event(job, {"type": "transcript", "text": text, "final": True, "early": early is not None})
        _event(job, {"type": "metrics", "stt_ms": stt_ms})
        if text:
            # Both at once: the intent, not the reply, is what the caller's first
            # word waits for (the reply is drafted speculatively, its words held
            # for the intent).
            start_classify(job, text)
            reply.apply_async(args=[job], kwargs={"text": text, "classify_sent": True})

    # Announced with the session locked, before the turn is written: the save
    # (9 queries, 5-9 ms) is off the way to the first word, and the agent's
    # turn still cannot be saved before this one (calls.turns.record_turn).
    record_turn(
        job["session_id"], job["turn_id"], "user", text=text, stt_ms=stt_ms, while_locked=announce
    )
    if not text:
        _nothing_to_answer(job)
