"""Audio helpers shared by the engines and the pipeline.

Everything here works on PCM16 little-endian mono bytes, the format of the wire
protocol and of every engine's input and output. Resampling uses soxr (the
engines' rates differ: 16 kHz in, 22.05 kHz Piper out); WAV files go through
the stdlib ``wave`` module.
"""

import io
import wave
from pathlib import Path

import numpy as np
import soxr

from workers.engines.base import EngineError

SAMPLE_WIDTH = 2  # bytes per PCM16 sample


def pcm16_to_float(pcm16: bytes) -> np.ndarray:
    """PCM16 bytes → float32 samples in [-1, 1] (what Whisper and soxr expect)."""
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] → PCM16 bytes, clipping instead of wrapping around."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def resample(pcm16: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample PCM16 mono audio with soxr's high-quality filter."""
    if from_rate == to_rate or not pcm16:
        return pcm16
    samples = np.frombuffer(pcm16, dtype="<i2")
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype("<i2").tobytes()


def duration_s(pcm16: bytes, sample_rate: int) -> float:
    return len(pcm16) / SAMPLE_WIDTH / sample_rate


def rms(pcm16: bytes) -> float:
    """Root mean square level in [0, 1]; 0 for silence or empty input."""
    if len(pcm16) < SAMPLE_WIDTH:
        return 0.0
    samples = pcm16_to_float(pcm16)
    return float(np.sqrt(np.mean(samples * samples)))


def validate_pcm16(
    pcm16: bytes, sample_rate: int, max_duration_s: float | None = None, stage: str = "stt"
) -> None:
    """Raise ``EngineError(bad_audio)`` unless ``pcm16`` is usable PCM16 mono audio."""
    if not isinstance(pcm16, bytes | bytearray | memoryview):
        raise EngineError(stage, "audio", "bad_audio", "Audio must be PCM16 bytes.")
    if sample_rate < 8000 or sample_rate > 48000:
        raise EngineError(
            stage, "audio", "bad_audio", f"Sample rate {sample_rate} Hz is outside 8000–48000 Hz."
        )
    if len(pcm16) % SAMPLE_WIDTH:
        raise EngineError(
            stage, "audio", "bad_audio", "PCM16 audio must have an even number of bytes."
        )
    if max_duration_s is not None and duration_s(pcm16, sample_rate) > max_duration_s:
        raise EngineError(
            stage,
            "audio",
            "bad_audio",
            f"Audio lasts {duration_s(pcm16, sample_rate):.1f} s, more than {max_duration_s} s.",
        )


def read_wav(source: str | Path | bytes) -> tuple[bytes, int]:
    """Read a PCM16 WAV file (path or bytes) → (mono PCM16 bytes, sample rate).

    Stereo files are mixed down to mono; any other sample width is refused.
    """
    handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    try:
        with handle, wave.open(handle, "rb") as wav:
            if wav.getsampwidth() != SAMPLE_WIDTH:
                raise EngineError(
                    "stt", "audio", "bad_audio", "Only 16-bit PCM WAV files are supported."
                )
            channels = wav.getnchannels()
            rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise EngineError("stt", "audio", "bad_audio", f"Not a readable WAV file: {exc}") from exc
    if channels > 1:
        samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)
        frames = samples.mean(axis=1).astype("<i2").tobytes()
    return frames, rate


def wav_bytes(pcm16: bytes, sample_rate: int) -> bytes:
    """Wrap PCM16 mono audio in a WAV container (for upload or download)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm16)
    return buffer.getvalue()


def write_wav(path: str | Path, pcm16: bytes, sample_rate: int) -> None:
    Path(path).write_bytes(wav_bytes(pcm16, sample_rate))
