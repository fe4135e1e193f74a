"""Endpointing: where an utterance starts and ends in the caller's audio.

Consumes PCM16 mono audio at any allowed input rate (:class:`Resampler` brings
it to 16 kHz with soxr); produces :class:`SpeechStarted` and
:class:`SpeechEnded` (with the utterance's 16 kHz audio) from webrtcvad
decisions on 30 ms frames, and :class:`SpeechPaused` when the caller has been
quiet long enough that the utterance may be over, so that it can be
transcribed while the endpointer waits for the rest of its silence. Those
words then end the utterance at once or make it wait longer
(:meth:`Endpointer.words_heard`).
"""

from collections import deque
from dataclasses import dataclass

import numpy as np
import soxr
import webrtcvad
from django.conf import settings

VAD_RATE = 16000
# webrtcvad accepts 10, 20 or 30 ms frames; 30 ms gives the steadiest decisions.
FRAME_MS = 30
FRAME_BYTES = VAD_RATE * FRAME_MS // 1000 * 2
# Audio kept from before the trigger so the utterance's first syllable is not
# clipped (the trigger fires only after VOICE_VAD_START_MS of voiced audio).
PRE_ROLL_MS = 300
# Slack around the start threshold: speech has short unvoiced gaps (stops,
# fricatives), so "150 ms voiced within the last 300 ms" starts an utterance.
START_WINDOW_SLACK_MS = 150
# webrtcvad keeps saying "voiced" for about 90 ms after any sound stops (its
# hangover smoothing, measured: a 30 ms syllable gives 4 voiced frames). Those
# frames are added to the threshold so VOICE_VAD_START_MS means real voice.
HANGOVER_MS = 90


@dataclass(frozen=True)
class VadSettings:
    aggressiveness: int = 2
    start_ms: int = 150
    silence_ms: int = 600
    max_utterance_ms: int = 15000
    # Trailing silence after which SpeechPaused is sent; 0, or not below
    # silence_ms: never.
    early_ms: int = 0
    # The silence that ends the utterance once the words of a pause are known
    # (words_heard): complete_ms after a complete thought, trailing_off_ms
    # after words that trail off; each only if it is shorter (complete) or
    # longer (trailing off) than silence_ms.
    complete_ms: int = 0
    trailing_off_ms: int = 0

    @classmethod
    def from_django(cls) -> "VadSettings":
        return cls(
            aggressiveness=settings.VOICE_VAD_AGGRESSIVENESS,
            start_ms=settings.VOICE_VAD_START_MS,
            silence_ms=settings.VOICE_VAD_SILENCE_MS,
            max_utterance_ms=int(settings.VOICE_MAX_UTTERANCE_S * 1000),
            early_ms=settings.VOICE_STT_EARLY_MS,
            complete_ms=settings.VOICE_VAD_COMPLETE_MS,
            trailing_off_ms=settings.VOICE_VAD_TRAILING_OFF_MS,
        )


@dataclass(frozen=True)
class SpeechStarted:
    pass


@dataclass(frozen=True)
class SpeechPaused:
    """The caller has been quiet for ``early_ms``: the utterance so far, in case it is over."""

    audio: bytes  # PCM16 mono at 16 kHz, including the pre-roll
    pause: int  # numbered from 1 within the utterance


@dataclass(frozen=True)
class SpeechEnded:
    audio: bytes  # PCM16 mono at 16 kHz, including the pre-roll
    cut: bool  # True when the utterance hit max_utterance_ms instead of ending in silence
    # The SpeechPaused after which no voice came: its audio holds all the
    # speech of this one (the rest is silence). None when the caller spoke
    # again after the last pause, or there was none.
    pause: int | None = None

    @property
    def duration_ms(self) -> float:
        return len(self.audio) / 2 * 1000 / VAD_RATE


VadEvent = SpeechStarted | SpeechPaused | SpeechEnded


def _frames(ms: int) -> int:
    return max(1, -(-ms // FRAME_MS))


class Endpointer:
    """Feed 16 kHz PCM16 in any chunk size; get speech start/end events back."""

    def __init__(self, config: VadSettings | None = None) -> None:
        self.config = config or VadSettings()
        self._vad = webrtcvad.Vad(self.config.aggressiveness)
        self._pending = bytearray()
        self._start_frames = _frames(self.config.start_ms + HANGOVER_MS)
        self._silence_frames = _frames(self.config.silence_ms)
        complete = self.config.complete_ms
        self._complete_frames = _frames(complete) if 0 < complete < self.config.silence_ms else 0
        trailing_off = max(self.config.trailing_off_ms, self.config.silence_ms)
        self._trailing_off_frames = _frames(trailing_off)
        self._ending_frames = self._silence_frames  # as the words of this pause make it
        early = self.config.early_ms
        self._early_frames = _frames(early) if 0 < early < self.config.silence_ms else 0
        self._pauses = 0  # SpeechPaused sent in this utterance
        self._quiet_since_pause = False  # no voiced frame since the last SpeechPaused
        self._max_frames = _frames(self.config.max_utterance_ms)
        window = _frames(self.config.start_ms + HANGOVER_MS + START_WINDOW_SLACK_MS)
        self._window: deque[bool] = deque(maxlen=window)
        self._pre_roll: deque[bytes] = deque(maxlen=max(window, _frames(PRE_ROLL_MS)))
        self._utterance: list[bytes] = []
        self._trailing_silence = 0

    @property
    def in_speech(self) -> bool:
        return bool(self._utterance)

    def feed(self, pcm16: bytes) -> list[VadEvent]:
        self._pending.extend(pcm16)
        events: list[VadEvent] = []
        while len(self._pending) >= FRAME_BYTES:
            frame = bytes(self._pending[:FRAME_BYTES])
            del self._pending[:FRAME_BYTES]
            event = self._step(frame, self._vad.is_speech(frame, VAD_RATE))
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> SpeechEnded | None:
        """End an utterance in progress (the caller hung up or typed instead)."""
        if not self._utterance:
            return None
        return self._finish(cut=True)

    def _step(self, frame: bytes, voiced: bool) -> VadEvent | None:
        if not self._utterance:
            self._pre_roll.append(frame)
            self._window.append(voiced)
            if sum(self._window) >= self._start_frames:
                self._utterance = list(self._pre_roll)
                self._trailing_silence = 0
                return SpeechStarted()
            return None
        self._utterance.append(frame)
        self._trailing_silence = 0 if voiced else self._trailing_silence + 1
        if voiced:
            self._quiet_since_pause = False
            self._ending_frames = self._silence_frames
        if self._trailing_silence >= self._ending_frames:
            return self._finish(cut=False)
        if len(self._utterance) >= self._max_frames:
            return self._finish(cut=True)
        if self._early_frames and self._trailing_silence == self._early_frames:
            self._pauses += 1
            self._quiet_since_pause = True
            return SpeechPaused(audio=b"".join(self._utterance), pause=self._pauses)
        return None

    def words_heard(self, pause: int, complete: bool | None) -> SpeechEnded | None:
        """The early transcript of ``pause`` said whether the words so far are a
        complete thought (``calls.turnend.ends_thought``; None: no words).

        Acts only while the caller is still silent in that pause: a complete
        thought ends the utterance after ``complete_ms`` of silence (now, and
        returned, if that much has passed), words that trail off after
        ``trailing_off_ms``; a resumed voice brings back ``silence_ms``.
        """
        if not self._utterance or pause != self._pauses or not self._quiet_since_pause:
            return None
        if complete and self._complete_frames:
            self._ending_frames = self._complete_frames
        elif complete is False:
            self._ending_frames = self._trailing_off_frames
        if self._trailing_silence >= self._ending_frames:
            return self._finish(cut=False)
        return None

    def _finish(self, cut: bool) -> SpeechEnded:
        audio = b"".join(self._utterance)
        pause = self._pauses if self._quiet_since_pause and not cut else None
        self._utterance = []
        self._trailing_silence = 0
        self._ending_frames = self._silence_frames
        self._pauses = 0
        self._quiet_since_pause = False
        self._window.clear()
        self._pre_roll.clear()
        return SpeechEnded(audio=audio, cut=cut, pause=pause)


class Resampler:
    """Streaming PCM16 resampling from the client's rate to 16 kHz."""

    def __init__(self, in_rate: int, out_rate: int = VAD_RATE) -> None:
        self.in_rate = in_rate
        self._stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ")
        )

    def __call__(self, pcm16: bytes) -> bytes:
        if self._stream is None:
            return pcm16
        samples = np.frombuffer(pcm16, dtype="<i2")
        return self._stream.resample_chunk(samples).astype("<i2").tobytes()
