"""The tts queue: speech for one sentence of a reply, streamed as it is made.

Consumes ``workers.tts.synthesize(job, sentence=n, text=...)`` (one per
sentence, from the responder) and ``workers.tts.speak_text(job, text=...)``
(a whole reply the agent says by itself, from the consumer: the greeting as
turn 0, the fallback line of a failed turn). Produces ``pipeline.audio``
messages (PCM16 chunks of sentence ``n``) and then ``pipeline.sentence_done``
on the consumer's channel; ``speak_text`` also closes its turn with
``pipeline.reply_done``.

The turn is checked before work and between chunks: a barged-in turn stops
within one chunk. A TTS failure ends the sentence without audio, so the
consumer is never left waiting for it.
"""

import logging
import re

from celery import shared_task

from voiceproj.pipeline import (
    SPEAK_TASK,
    SYNTHESIZE_TASK,
    Job,
    audio_message,
    event_message,
    reply_done_message,
    sentence_done_message,
)
from workers import relay
from workers.engines import get_tts
from workers.engines.base import EngineError
from workers.turnstate import is_current
from workers.turntask import TurnTask

logger = logging.getLogger(__name__)

# A sentence ends at . ! or ? (and any closing quote/bracket) followed by space.
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in SENTENCE_END.split(text) if part.strip()]


def speak(job: Job, sentence: int, text: str) -> bool:
    """Stream ``text`` as sentence ``sentence``; False when the turn went stale."""
    session_id, turn_id, channel = job["session_id"], job["turn_id"], job["channel_name"]
    tts = get_tts()
    try:
        for pcm in tts.stream(text, job["agent"]["voice"]):
            if not is_current(session_id, turn_id):
                return False
            relay.send(channel, audio_message(job, sentence, tts.sample_rate, pcm))
    except EngineError as exc:
        logger.warning("TTS failed for turn %s of %s: %s", turn_id, session_id, exc)
        error = {"type": "error", "code": "pipeline_error", "message": exc.message}
        relay.send(channel, event_message(job, error))
    relay.send(channel, sentence_done_message(job, sentence, text))
    return True


@shared_task(name=SYNTHESIZE_TASK, base=TurnTask, soft_time_limit=30, time_limit=40)
def synthesize(job: Job, sentence: int, text: str) -> None:
    """Speak one sentence of a reply."""
    speak(job, sentence, text)


@shared_task(name=SPEAK_TASK, base=TurnTask, soft_time_limit=60, time_limit=75)
def speak_text(job: Job, text: str) -> None:
    """Speak ``text`` as the turn's whole reply, sentence by sentence, then close the turn."""
    sentences = split_sentences(text)
    for index, sentence in enumerate(sentences):
        if not speak(job, index, sentence):
            return
    relay.send(job["channel_name"], reply_done_message(job, " ".join(sentences), len(sentences)))
