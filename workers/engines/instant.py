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
  and streams :data:`REPLY` in token-sized deltas; offered tools, it calls the
  one whose name the caller says, with arguments read from the words after
  each parameter's name (:func:`tool_call_in`), so tests and benchmarks can
  drive function calling without a model.
* :class:`InstantTTS` streams a quiet 440 Hz tone as long as the text would
  take to say at :data:`CHARS_PER_S`, in :data:`CHUNK_MS` chunks.
"""

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np
import redis

from workers.audio import SAMPLE_WIDTH, float_to_pcm16, validate_pcm16
from workers.engines.base import EngineError, Message, ToolCall, ToolSpec, Transcript
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


def _argument(text: str, name: str, schema: dict[str, Any]) -> Any:
    """The word after parameter ``name`` (``is`` or ``:`` allowed between), typed
    per ``schema``; None when the caller did not say it."""
    phrase = r"\W+".join(map(re.escape, _words(name)))
    found = re.search(rf"\b{phrase}\b(?:\s+is|\s*:)?\s+([\w@.+-]+)", text, re.IGNORECASE)
    if not found:
        return None
    word = found.group(1).rstrip(".")
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", word):
        return int(word)
    if kind == "number" and re.fullmatch(r"-?\d+(?:\.\d+)?", word):
        return float(word)
    if kind == "boolean":
        return word.lower() in ("yes", "true")
    return word


def tool_call_in(text: str, tools: Sequence[ToolSpec]) -> ToolCall | None:
    """The call of the first tool whose name (``_`` read as a space) ``text`` says.

    Each parameter named in the text takes the word after its name: "check
    order, order id 4711" calls ``check_order`` with ``{"order_id": "4711"}``.
    Arguments are not checked here: the tool runner validates them, as it
    must for a real model.
    """
    words = f" {' '.join(_words(text))} "
    for tool in tools:
        if f" {' '.join(_words(tool['name']))} " in words:
            properties = tool.get("parameters", {}).get("properties", {})
            arguments = {
                name: value
                for name, schema in properties.items()
                if (value := _argument(text, name, schema)) is not None
            }
            return ToolCall(tool["name"], arguments)
    return None


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

    def stream_or_call(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        model: str,
        temperature: float,
        max_tokens: int,
    ) -> Iterator[str | ToolCall]:
        """A :func:`tool_call_in` the caller's last message, else :meth:`stream`.

        The call takes as long as its JSON would take to generate at the token
        delay, as a model's would.
        """
        last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        call = tool_call_in(last, tools)
        if call is None:
            yield from self.stream(messages, model, temperature, max_tokens)
            return
        if self._token_delay_s:
            as_json = json.dumps({"name": call.name, "arguments": call.arguments})
            time.sleep(self._token_delay_s * len(re.findall(r" ?\w+|[^\w\s]", as_json)))
        yield call

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
# A tone rather than silence, so whatever carries the agent's audio (a phone
# line, a call recording) can tell it from silence; it costs what silence
# does: one chunk computed once. 440 Hz fits 44 whole periods in a chunk, so
# chunks join without a click; a tenth of full scale is plainly audible.
TONE_HZ = 440
TONE_LEVEL = 0.1
_TONE_CHUNK = float_to_pcm16(
    TONE_LEVEL * np.sin(2 * np.pi * TONE_HZ * np.arange(CHUNK_BYTES // SAMPLE_WIDTH) / SAMPLE_RATE)
)


def speech_samples(text: str) -> int:
    """How many samples saying ``text`` takes at :data:`CHARS_PER_S`."""
    return round(len(text.strip()) * SAMPLE_RATE / CHARS_PER_S)


class InstantTTS:
    """A tone as long as the text would take to say, any voice name accepted."""

    provider = PROVIDER
    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        logger.warning("VOICE_TTS=instant: replies are spoken as a tone (benchmark instrument)")

    def stream(self, text: str, voice: str) -> Iterator[bytes]:
        remaining = speech_samples(text) * SAMPLE_WIDTH
        while remaining > CHUNK_BYTES:
            yield _TONE_CHUNK
            remaining -= CHUNK_BYTES
        if remaining:
            yield _TONE_CHUNK[:remaining]
