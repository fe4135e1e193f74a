"""The narrow interface of each pipeline stage's engine.

Workers only ever talk to these protocols; which provider sits behind them is
chosen by settings (``VOICE_STT``, ``VOICE_LLM``, ``VOICE_TTS``) and per-agent
fields (models, voice). Every provider failure surfaces as :class:`EngineError`.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class EngineError(Exception):
    """A provider could not do its job; ``message`` tells an operator what to fix.

    ``code`` is stable and machine-readable: ``missing_key``, ``unreachable``,
    ``unauthorized``, ``unknown_model``, ``unknown_voice``, ``bad_response``,
    ``timeout``, ``bad_audio`` or ``failed``.
    """

    def __init__(self, stage: str, provider: str, code: str, message: str) -> None:
        super().__init__(f"[{stage}/{provider}] {code}: {message}")
        self.stage = stage
        self.provider = provider
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float | None = None


class SpeechToText(Protocol):
    provider: str

    def transcribe(
        self,
        pcm16: bytes,
        sample_rate: int,
        language: str = "en",
        *,
        tag: str | None = None,
        hints: Sequence[str] = (),
    ) -> Transcript:
        """Transcribe one utterance of PCM16 mono audio.

        ``tag`` names the call the utterance belongs to (the pipeline passes the
        session id): Deepgram labels the request with it for usage reports, the
        instant engine looks up the call's announced text; others ignore it.
        ``hints`` are words and phrases the caller is likely to say (the
        agent's vocabulary): faster-whisper's ``hotwords``, Deepgram's
        ``keyterm``; the instant engine ignores them.
        """


Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
# A tool as offered to the model: {"name", "description", "parameters" (JSON Schema)}.
ToolSpec = dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """The model's request to call tool ``name`` with ``arguments`` (not yet validated)."""

    name: str
    arguments: dict[str, Any]


class IntentClassifier(Protocol):
    """What the classify queue asks (``workers.engines.get_classifier``): an LLM
    engine, or the local embedding classifier."""

    provider: str

    def classify(
        self,
        text: str,
        intents: Sequence[dict[str, str]],
        model: str,
        temperature: float,
        *,
        examples: Mapping[str, Sequence[str]] | None = None,
    ) -> str:
        """Return exactly one of ``intents``' names for the caller's ``text``.

        ``examples`` are the agent's caller utterances per intent name, shown
        to the model as few-shot examples (the instant engine ignores them).
        """


class LanguageModel(IntentClassifier, Protocol):
    def stream(
        self, messages: Sequence[Message], model: str, temperature: float, max_tokens: int
    ) -> Iterator[str]:
        """Yield the reply as text deltas while it is generated."""

    def stream_or_call(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        model: str,
        temperature: float,
        max_tokens: int,
    ) -> Iterator[str | ToolCall]:
        """Like :meth:`stream`, but the model may call one of ``tools`` instead:
        then a :class:`ToolCall` is yielded (the last item)."""


class TextToSpeech(Protocol):
    provider: str
    sample_rate: int

    def stream(self, text: str, voice: str) -> Iterator[bytes]:
        """Yield PCM16 mono chunks at ``sample_rate`` as they are synthesized."""
