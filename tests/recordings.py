"""Helpers for the recording tests: a recording made by the real recorder on a
clock the test turns, and the per-channel energy of a WAV over time."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calls.models import CallSession, Recording
from calls.recording import RECORDING_RATE, CallRecorder, store
from calls.turns import record_turn

WINDOW_S = 0.1
TONE_HZ = 300


class Clock:
    """A clock that moves only when told: ``clock.t = 2.5``."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def tone(seconds: float, rate: int = RECORDING_RATE, level: float = 0.3) -> bytes:
    """A PCM16 mono tone: something a channel's energy shows plainly."""
    n = np.arange(round(seconds * rate))
    return (level * 32767 * np.sin(2 * np.pi * TONE_HZ * n / rate)).astype("<i2").tobytes()


def feed_caller(recorder: CallRecorder, clock: Clock, start: float, seconds: float) -> None:
    """The caller speaks from ``start`` for ``seconds``, in 20 ms frames at real-time pace."""
    frame = tone(0.02)
    for i in range(round(seconds / 0.02)):
        clock.t = start + (i + 1) * 0.02
        recorder.caller(frame)


def make_recording(session: CallSession, spool: Path, length_s: float = 6.0) -> Recording:
    """A stored recording of ``session`` and its transcript: the caller at 1–2 s
    (turn 1), the agent answering at 3–5 s, ``length_s`` long."""
    record_turn(str(session.id), 1, "user", text="When do you open?")
    record_turn(str(session.id), 1, "agent", text="We open at nine.")
    clock = Clock()
    recorder = CallRecorder(spool / f"{session.id}.wav", clock=clock)
    feed_caller(recorder, clock, 1.0, 0.3)
    recorder.mark(1, "user")  # noticed after some speech: marked a pre-roll earlier, at 1 s
    feed_caller(recorder, clock, 1.3, 0.7)
    clock.t = 3.0
    recorder.mark(1, "agent")
    recorder.agent(tone(2.0, 22050), 22050)
    clock.t = length_s
    recording = store(str(session.id), recorder.finish())
    assert recording is not None
    return recording


@dataclass
class Energy:
    """RMS (0..1) of each channel in consecutive :data:`WINDOW_S` windows."""

    left: np.ndarray
    right: np.ndarray
    rate: int
    seconds: float

    def window(self, t: float) -> int:
        return int(t / WINDOW_S)

    def span(self, channel: str, start: float, end: float) -> np.ndarray:
        """The windows of ``channel`` wholly inside ``start``..``end`` seconds."""
        values = self.left if channel == "left" else self.right
        span = values[self.window(start) + 1 : self.window(end)]
        assert span.size, f"no whole window between {start:.2f} and {end:.2f} s"
        return span


def channel_energy(wav_bytes: bytes) -> Energy:
    """Per-channel energy of a stereo PCM16 WAV, checking its format."""
    with wave.open(io.BytesIO(wav_bytes), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (2, 2)
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, 2).astype(np.float64) / 32768
    size = round(WINDOW_S * rate)
    count = len(samples) // size
    windows = samples[: count * size].reshape(count, size, 2)
    rms = np.sqrt((windows**2).mean(axis=1))
    return Energy(rms[:, 0], rms[:, 1], rate, len(samples) / rate)
