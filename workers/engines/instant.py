"""Instant engines: a benchmark and test instrument for every stage, no model at all.

``VOICE_STT=instant`` / ``VOICE_LLM=instant`` / ``VOICE_TTS=instant`` replace
the models with answers that cost next to nothing, so a load test measures
what the platform itself adds to a turn (queues, channel layer, consumer)
rather than model time. Only an explicit setting selects them, never a default.

* :class:`InstantSTT` returns the text the benchmark announced for the call:
  the client announces the words it is about to speak with :func:`announce`
  (an RPUSH to ``voice:instant:stt:<tag>`` on ``REDIS_URL``) and each
  transcribed utterance LPOPs one. Nothing announced gives an empty transcript, which ends the turn
  with nothing to answer, as silence would with a real engine.
* :class:`InstantLLM` classifies by a fixed keyword rule (:meth:`~InstantLLM.classify`)
  and streams :data:`REPLY` in token-sized deltas.
* :class:`InstantTTS` streams all-zero PCM16 as long as the text would take to
  say at :data:`CHARS_PER_S`, in :data:`CHUNK_MS` chunks.
"""

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import cast

import redis

from workers.audio import SAMPLE_WIDTH, validate_pcm16
from workers.engines.base import EngineError, Message, Transcript
from workers.engines.prompts import intent_names

logger = logging.getLogger(__name__)

PROVIDER = "instant"

# --- STT ------------------------------------------------------------------------

# Longer than any turn waits for its transcript, short enough that texts left
# behind by an aborted benchmark run do not linger.
ANNOUNCE_TTL_S = 600
# Same bound as the real STT engines, so a hand-crafted huge job fails alike.
MAX_DURATION_S = 120.0


def announce_key(tag: str) -> str:
    """The Redis list holding the announced transcripts of call ``tag``."""
    return f"voice:instant:stt:{tag}"


def announce(client: redis.Redis, tag: str, text: str) -> None:
    """Make ``text`` the transcript of call ``tag``'s next unanswered utterance."""
    key = announce_key(tag)
    with client.pipeline() as pipe:
        pipe.rpush(key, text)
        pipe.expire(key, ANNOUNCE_TTL_S)
        pipe.execute()


class InstantSTT:
    """Transcripts announced in Redis by the client, one per utterance and call."""

    provider = PROVIDER

    def __init__(self, redis_url: str, timeout_s: float) -> None:
        logger.warning(
            "VOICE_STT=instant: transcripts are the texts announced in Redis, "
            "no speech is recognised (benchmark instrument)"
        )
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=timeout_s)

    def transcribe(
        self,
        pcm16: bytes,
        sample_rate: int,
        language: str = "en",
        *,
        tag: str | None = None,
        hints: Sequence[str] = (),
    ) -> Transcript:
        """The next text announced for call ``tag``; empty when none was (or no tag).

        ``hints`` change nothing: the words are exactly what was announced.
        """
        validate_pcm16(pcm16, sample_rate, MAX_DURATION_S)
        if not pcm16 or tag is None:
            return Transcript(text="", confidence=None)
        try:
            announced = cast(bytes | None, self._redis.lpop(announce_key(tag)))
        except redis.RedisError as exc:
            raise EngineError(
                "stt", self.provider, "unreachable", f"Cannot read announced text: {exc}"
            ) from exc
        if announced is None:
            return Transcript(text="", confidence=None)
        # The words are exactly what the client said it would speak.
        return Transcript(text=announced.decode(), confidence=1.0)


# --- LLM ------------------------------------------------------------------------

# Three sentences, 26 words: the reply length MAX_REPLY_TOKENS is sized for,
# so the TTS queue gets the usual three jobs per turn.
REPLY = (
    "Thanks for calling, this is the instant test engine speaking. "
    "It streams a fixed reply of three short sentences. "
    "No model ran to write this answer."
)
# Word pieces with their leading space, punctuation on its own: about the
# deltas a BPE tokenizer streams (30 for REPLY), and they join back to REPLY.
TOKENS: tuple[str, ...] = tuple(re.findall(r" ?\w+|[^\w\s]", REPLY))

# Obvious words of the built-in intents; any intent also matches its own name.
KEYWORDS: dict[str, frozenset[str]] = {
    "farewell": frozenset({"bye", "goodbye", "farewell"}),
    "greeting": frozenset({"hello", "hi", "hey"}),
    "clarification": frozenset({"repeat", "pardon"}),
}
QUESTION_INTENT = "question"
FAREWELL_INTENT = "farewell"


def _words(text: str) -> list[str]:
    """Lower-case words; ``_`` and ``-`` separate words, so ``book_table`` is two."""
    return re.findall(r"[a-z0-9']+", text.lower())


def _mentions(words: list[str], name: str) -> bool:
    """Whether ``words`` hold intent ``name`` as a phrase, or one of its keywords."""
    phrase = " ".join(_words(name))
    if phrase and f" {phrase} " in f" {' '.join(words)} ":
        return True
    return not KEYWORDS.get(name, frozenset()).isdisjoint(words)


class InstantLLM:
    """A keyword classifier and a fixed streamed reply."""

    provider = PROVIDER

    def __init__(self, token_delay_s: float = 0.0) -> None:
        logger.warning(
            "VOICE_LLM=instant: intents by keyword, a fixed reply (benchmark instrument)"
        )
        self._token_delay_s = token_delay_s

    def stream(
        self, messages: Sequence[Message], model: str, temperature: float, max_tokens: int
    ) -> Iterator[str]:
        """:data:`REPLY`, at most ``max_tokens`` of :data:`TOKENS`, whatever was asked."""
        for token in TOKENS[: max(1, max_tokens)]:
            if self._token_delay_s:
                time.sleep(self._token_delay_s)
            yield token

    def classify(
        self,
        text: str,
        intents: Sequence[dict[str, str]],
        model: str,
        temperature: float,
        *,
        examples: Mapping[str, Sequence[str]] | None = None,
    ) -> str:
        """The first rule that applies, always one of the agent's intent names.

        ``examples`` are not used: the rule stays predictable for benchmarks.

        1. the first intent (in the agent's order) whose name (``_`` and ``-``
           read as spaces) or one of whose :data:`KEYWORDS` the text says;
        2. ``question`` when the text has a ``?`` and the agent has that intent;
        3. the first intent that is not ``farewell`` (arbitrary text must not
           end the call), or ``farewell`` when it is the only one.
        """
        names = intent_names(intents, "llm", self.provider)
        words = _words(text)
        mentioned = next((n for n in names if _mentions(words, n)), None)
        if mentioned is not None:
            return mentioned
        if "?" in text and QUESTION_INTENT in names:
            return QUESTION_INTENT
        return next((n for n in names if n != FAREWELL_INTENT), names[0])


# --- TTS ------------------------------------------------------------------------

# Piper's rate, so switching to instant changes nothing downstream.
SAMPLE_RATE = 22050
# About 150 words a minute at 5.6 characters a word (spaces included): an
# ordinary human pace. Piper joe-medium is quicker (17 characters a second,
# measured on REPLY's sentences); the longer audio keeps the benchmark on the
# heavy side, like CHUNK_MS.
CHARS_PER_S = 14.0
# A streaming cloud voice sends small chunks; 100 ms makes five channel-layer
# messages per Piper chunk (0.5 s), so a benchmark errs on the heavy side.
CHUNK_MS = 100
CHUNK_BYTES = SAMPLE_RATE * CHUNK_MS // 1000 * SAMPLE_WIDTH
_SILENT_CHUNK = bytes(CHUNK_BYTES)


def speech_samples(text: str) -> int:
    """How many samples saying ``text`` takes at :data:`CHARS_PER_S`."""
    return round(len(text.strip()) * SAMPLE_RATE / CHARS_PER_S)


class InstantTTS:
    """Silence as long as the text would take to say, any voice name accepted."""

    provider = PROVIDER
    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        logger.warning("VOICE_TTS=instant: replies are spoken as silence (benchmark instrument)")

    def stream(self, text: str, voice: str) -> Iterator[bytes]:
        remaining = speech_samples(text) * SAMPLE_WIDTH
        while remaining > CHUNK_BYTES:
            yield _SILENT_CHUNK
            remaining -= CHUNK_BYTES
        if remaining:
            yield bytes(remaining)
