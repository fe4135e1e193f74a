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
import time
from collections.abc import Callable

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
from workers.audio import SAMPLE_WIDTH
from workers.engines import get_tts
from workers.engines.base import EngineError
from workers.turnstate import is_current
from workers.turntask import TurnTask

logger = logging.getLogger(__name__)

# A sentence ends at . ! or ? (and any closing quote/bracket) followed by space.
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


# Once the caller has this much of the sentence queued for playback, audio
# waits for more before it is sent...
AUDIO_LEAD_S = 0.3
# ...up to this much per message. Every channel-layer message costs the web
# process four Redis round trips on one queue shared by all its calls; a TTS
# engine faster than real time sent 110 messages per reply, and at 50 callers
# a transcript waited 4.2 s (p50) behind other calls' audio (docs/benchmarks.md).
AUDIO_MESSAGE_S = 1.0


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in SENTENCE_END.split(text) if part.strip()]


class AudioBatcher:
    """Groups an engine's audio chunks into fewer, larger messages.

    A chunk goes out at once while the caller has less than
    :data:`AUDIO_LEAD_S` of audio ahead (the first always does, so batching
    never delays the first audio); beyond that chunks are held until
    :data:`AUDIO_MESSAGE_S` of audio is ready or the sentence ends. An engine
    slower than real time therefore still streams chunk by chunk.
    """

    def __init__(self, send: Callable[[bytes], None], sample_rate: int) -> None:
        self.send = send
        self.bytes_per_s = sample_rate * SAMPLE_WIDTH
        self.held = bytearray()
        self.sent_s = 0.0
        self.started_at: float | None = None

    def add(self, pcm: bytes) -> None:
        self.held += pcm
        if self._ahead_s() < AUDIO_LEAD_S or len(self.held) >= AUDIO_MESSAGE_S * self.bytes_per_s:
            self.flush()

    def flush(self) -> None:
        if not self.held:
            return
        if self.started_at is None:
            self.started_at = time.monotonic()
        self.sent_s += len(self.held) / self.bytes_per_s
        self.send(bytes(self.held))
        self.held.clear()

    def _ahead_s(self) -> float:
        """Audio sent but not yet played, were playback to start with the first send."""
        if self.started_at is None:
            return 0.0
        return self.sent_s - (time.monotonic() - self.started_at)


def speak(job: Job, sentence: int, text: str) -> bool:
    """Stream ``text`` as sentence ``sentence``; False when the turn went stale."""
    session_id, turn_id, channel = job["session_id"], job["turn_id"], job["channel_name"]
    tts = get_tts()
    audio = AudioBatcher(
        lambda pcm: relay.send(channel, audio_message(job, sentence, tts.sample_rate, pcm)),
        tts.sample_rate,
    )
    try:
        for pcm in tts.stream(text, job["agent"]["voice"]):
            if not is_current(session_id, turn_id):
                return False
            audio.add(pcm)
    except EngineError as exc:
        audio.flush()  # what was made before the failure is still heard
        logger.warning("TTS failed for turn %s of %s: %s", turn_id, session_id, exc)
        error = {"type": "error", "code": "pipeline_error", "message": exc.message}
        relay.send(channel, event_message(job, error))
    audio.flush()
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
