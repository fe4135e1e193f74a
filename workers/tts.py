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


def speak(job: dict, sentence: int, text: str) -> bool:
    """Stream ``text`` as sentence ``sentence``; False when the turn went stale."""
    session_id, turn_id, channel = job["session_id"], job["turn_id"], job["channel_name"]
    tts = get_tts()
    try:
        for pcm in tts.stream(text, job["agent"]["voice"]):
            if not is_current(session_id, turn_id):
                return False
            relay.send(
                channel,
                {
                    "type": "pipeline.audio",
                    "turn_id": turn_id,
                    "sentence": sentence,
                    "sample_rate": tts.sample_rate,
                    "pcm": pcm,
                },
            )
    except EngineError as exc:
        logger.warning("TTS failed for turn %s of %s: %s", turn_id, session_id, exc)
        relay.send(
            channel,
            {
                "type": "pipeline.event",
                "turn_id": turn_id,
                "event": {"type": "error", "code": "pipeline_error", "message": exc.message},
            },
        )
    relay.send(
        channel,
        {"type": "pipeline.sentence_done", "turn_id": turn_id, "sentence": sentence, "text": text},
    )
    return True


@shared_task(name="workers.tts.synthesize", base=TurnTask, soft_time_limit=30, time_limit=40)
def synthesize(job: dict, sentence: int, text: str) -> None:
    """Speak one sentence of a reply."""
    speak(job, sentence, text)


@shared_task(name="workers.tts.speak_text", base=TurnTask, soft_time_limit=60, time_limit=75)
def speak_text(job: dict, text: str) -> None:
    """Speak ``text`` as the turn's whole reply, sentence by sentence, then close the turn."""
    sentences = split_sentences(text)
    for index, sentence in enumerate(sentences):
        if not speak(job, index, sentence):
            return
    relay.send(
        job["channel_name"],
        {
            "type": "pipeline.reply_done",
            "turn_id": job["turn_id"],
            "text": " ".join(sentences),
            "sentences": len(sentences),
            "end_call": False,
        },
    )
