"""Local speech-to-text: faster-whisper on the CPU.

Consumes one utterance of PCM16 mono audio, produces a :class:`Transcript`.
"""

import math
import threading
from collections.abc import Sequence

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel

from workers.audio import pcm16_to_float, resample, validate_pcm16
from workers.engines.base import EngineError, Transcript

WHISPER_RATE = 16000  # Whisper's only input rate
# One utterance is at most VOICE_MAX_UTTERANCE_S (15 s) on the wire; the limit
# here only protects the worker from a hand-crafted huge job.
MAX_DURATION_S = 120.0
# Whisper's prompt holds 223 tokens; hints beyond this would only be cut there.
MAX_HINT_CHARS = 600
WHISPER_WINDOW_S = 30  # the window Whisper was trained on
# A shorter window is used only for audio this much shorter than it: the tail
# of a longer utterance, alone in a window of its own, sent the model into
# repetition loops.
WINDOW_MARGIN_S = 2.0


class WindowedWhisper(WhisperModel):
    """faster-whisper whose encoder sees only ``chunk_length`` seconds.

    faster-whisper cuts the audio into ``chunk_length`` windows but pads each
    to Whisper's 30 s before encoding, and the encoder's time grows with its
    input: for an utterance of a few seconds most of it went on padding.
    Here the padded features are cut back to the window.
    """

    def encode(self, features: np.ndarray) -> ctranslate2.StorageView:
        return super().encode(features[..., : self.feature_extractor.nb_max_frames])


class WhisperSTT:
    provider = "local"

    def __init__(
        self,
        model: str,
        threads: int = 2,
        beam_size: int = 1,
        use_hints: bool = False,
        window_s: int = WHISPER_WINDOW_S,
    ) -> None:
        try:
            # int8 + beam 1: measured 1.2–1.6 s per 2.5 s clip on 2 cores, the
            # accuracy loss against beam 5 is negligible for short utterances.
            # local_files_only: a model *name* resolves from the local Hugging
            # Face cache only; nothing is downloaded at run time.
            self._model = WindowedWhisper(
                model, device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
            )
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError/OSError
            raise EngineError(
                "stt", self.provider, "unknown_model", f"Cannot load Whisper model {model!r}: {exc}"
            ) from exc
        self._beam_size = beam_size
        # Shorter than 30 s is faster and less accurate (STT_LOCAL_WINDOW_S);
        # windows fitted to the utterance's own length made the model lose
        # its way entirely.
        self._window_s = window_s
        # Off by default: on bench/quality.py's generic speech, hotwords raised
        # WER (0.144 -> 0.173 with the agent's name alone, 0.157 -> 0.165 with
        # name and examples) while they fix the spelling of rare names.
        self._use_hints = use_hints
        # CTranslate2 models may be shared by threads, but one utterance at a
        # time per process keeps latency predictable on small machines.
        self._lock = threading.Lock()

    def transcribe(
        self,
        pcm16: bytes,
        sample_rate: int,
        language: str = "en",
        *,
        tag: str | None = None,
        hints: Sequence[str] = (),
    ) -> Transcript:
        """Whisper's words for the utterance; ``tag`` means nothing to a local model.

        ``hints`` become Whisper's ``hotwords`` (a prompt the decoder is
        conditioned on) when the engine was built with ``use_hints``
        (``STT_LOCAL_HINTS``), so the agent's vocabulary is spelled its way.
        """
        hotwords = " ".join(hints)[:MAX_HINT_CHARS] if self._use_hints else ""
        validate_pcm16(pcm16, sample_rate, MAX_DURATION_S)
        if not pcm16:
            return Transcript(text="", confidence=None)
        audio = pcm16_to_float(resample(bytes(pcm16), sample_rate, WHISPER_RATE))
        fits = len(audio) / WHISPER_RATE <= self._window_s - WINDOW_MARGIN_S
        window_s = self._window_s if fits else WHISPER_WINDOW_S
        lang = (language or "en").split("-")[0].lower() or None
        with self._lock:
            try:
                segments, _info = self._model.transcribe(
                    audio,
                    language=lang,
                    beam_size=self._beam_size,
                    hotwords=hotwords or None,
                    vad_filter=False,
                    condition_on_previous_text=False,
                    chunk_length=window_s,
                )
                segments = list(segments)
            except (ValueError, RuntimeError) as exc:  # e.g. a language Whisper does not know
                raise EngineError("stt", self.provider, "failed", f"Whisper: {exc}") from exc
        text = " ".join(segment.text.strip() for segment in segments).strip()
        if not segments:
            return Transcript(text=text, confidence=None)
        # avg_logprob is per token; exp() turns the mean into a 0..1 figure.
        mean_logprob = sum(s.avg_logprob for s in segments) / len(segments)
        return Transcript(text=text, confidence=round(math.exp(mean_logprob), 3))
