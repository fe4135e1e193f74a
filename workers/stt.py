"""The stt queue: the caller's words from one utterance of audio.

Consumes ``workers.stt.transcribe(job, audio=<base64 PCM16>, sample_rate=16000)``
from the consumer when VAD ends an utterance. Produces the saved user turn
(text, ``stt_ms``), a ``transcript`` event and a worker ``metrics`` event on
the consumer's channel, then hands the text to the respond queue
(``workers.respond.reply``) and, at the same time, to the classify queue
(``workers.classify.start_classify``). An utterance with no words ends the turn with an
empty ``reply_done`` so the consumer stops waiting; an STT failure does the
same after an ``error`` event.
"""

import base64
import binascii
import time

from celery import shared_task

from calls.turns import record_turn
from voiceproj.pipeline import TRANSCRIBE_TASK, AgentConfig, Job, event_message, reply_done_message
from workers import relay
from workers.classify import start_classify
from workers.engines import get_stt
from workers.engines.base import EngineError, Transcript
from workers.respond import reply
from workers.turntask import TurnTask


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


@shared_task(name=TRANSCRIBE_TASK, base=TurnTask, soft_time_limit=30, time_limit=40)
def transcribe(job: Job, audio: str, sample_rate: int) -> None:
    """Transcribe the utterance, save and announce it, then start the reply."""
    started = time.monotonic()
    try:
        pcm = base64.b64decode(audio, validate=True)
        transcript = hear(job["agent"], pcm, sample_rate, tag=job["session_id"])
    except (binascii.Error, EngineError) as exc:
        reason = exc.code if isinstance(exc, EngineError) else "bad_audio"
        message = f"Could not transcribe the utterance ({reason})."
        _event(job, {"type": "error", "code": "pipeline_error", "message": message})
        _nothing_to_answer(job)
        return
    stt_ms = round((time.monotonic() - started) * 1000)
    text = transcript.text.strip()
    record_turn(job["session_id"], job["turn_id"], "user", text=text, stt_ms=stt_ms)
    _event(job, {"type": "transcript", "text": text, "final": True})
    _event(job, {"type": "metrics", "stt_ms": stt_ms})
    if not text:
        _nothing_to_answer(job)
        return
    # Both at once: the intent, not the reply, is what the caller's first word
    # waits for (the reply is drafted speculatively, its words held for the intent).
    start_classify(job, text)
    reply.apply_async(args=[job], kwargs={"text": text, "classify_sent": True})
