"""Call recordings: a call's audio written to a stereo WAV file as the call goes.

:class:`CallRecorder` consumes what the call core (calls/core.py) hands it,
whatever transport carries the call: the caller's audio at 16 kHz as it
arrives, the agent's reply audio as it is sent to the caller, the moment the
caller barged in (what was still queued for playback is dropped, as the client
dropped it) and where each turn begins. It produces a PCM16 WAV at
:data:`RECORDING_RATE`, the caller on the left channel and the agent on the
right, whose timeline is the call's wall clock: silence where nobody spoke,
the caller's audio where it arrived, the agent's where the caller heard it.

The file grows on a local disk (RECORDING_SPOOL_DIR) while the call runs: only
the last moments of audio are held in memory (:data:`WRITE_LAG_S`, plus reply
audio queued for playback but not yet due). :func:`store` hands the finished
file to the "recordings" storage (docs/recordings.md) and saves its
:class:`~calls.models.Recording`.
"""

import logging
import time
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from voiceproj.ranges import ranged_file_response

from .models import CallSession, Recording
from .vad import PRE_ROLL_MS, VAD_RATE, Resampler

logger = logging.getLogger(__name__)

# The caller's audio is kept at the rate the endpointer uses, so it is recorded
# as it was heard by the pipeline, with no second resampling.
RECORDING_RATE = VAD_RATE
SAMPLE_BYTES = 2
CHANNELS = 2
# Audio is written this far behind the wall clock, so caller frames that arrive
# a little late (network jitter) still land where they belong.
WRITE_LAG_S = 0.5
# A pause in the caller's stream shorter than this is jitter, not silence: the
# frame joins the previous one instead of leaving a click-sized gap.
CALLER_GAP_S = 0.2


class _Track:
    """One channel's samples not yet written: PCM16 bytes from sample ``base`` on."""

    def __init__(self) -> None:
        self.base = 0
        self.pending = bytearray()

    @property
    def end(self) -> int:
        """The sample after the last one placed."""
        return self.base + len(self.pending) // SAMPLE_BYTES

    def place(self, at: int, pcm: bytes) -> None:
        """Put ``pcm`` at sample ``at`` (at or after :attr:`end`), silence before it."""
        self.pending += bytes((at - self.end) * SAMPLE_BYTES) + pcm

    def cut(self, at: int) -> None:
        """Drop what was placed from sample ``at`` on."""
        del self.pending[max(0, at - self.base) * SAMPLE_BYTES :]

    def take(self, stop: int) -> np.ndarray:
        """The samples up to ``stop`` (silence where none were placed), removed."""
        count = stop - self.base
        head = bytes(self.pending[: count * SAMPLE_BYTES])
        del self.pending[: count * SAMPLE_BYTES]
        self.base = stop
        samples = np.zeros(count, dtype="<i2")
        samples[: len(head) // SAMPLE_BYTES] = np.frombuffer(head, dtype="<i2")
        return samples


@dataclass
class Finished:
    """A closed recording on the local disk, ready for :func:`store`."""

    path: Path
    duration_ms: int
    marks: list[dict[str, Any]] = field(default_factory=list)


class CallRecorder:
    """One call's stereo recording, written to ``path`` as the call goes."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._t0 = clock()
        self._wav = wave.open(str(path), "wb")  # noqa: SIM115  (closed by finish)
        self._wav.setnchannels(CHANNELS)
        self._wav.setsampwidth(SAMPLE_BYTES)
        self._wav.setframerate(RECORDING_RATE)
        self._written = 0
        self._caller = _Track()
        self._agent = _Track()
        self._agent_resampler: Resampler | None = None
        self.marks: list[dict[str, Any]] = []

    @classmethod
    def for_session(cls, session_id: str) -> "CallRecorder":
        """A recorder in RECORDING_SPOOL_DIR; the name is unique to this connection."""
        name = f"{session_id}-{uuid.uuid4().hex[:8]}.wav"
        return cls(Path(settings.RECORDING_SPOOL_DIR) / name)

    def _now(self) -> int:
        """The call's wall clock, in samples since the recording began."""
        return round((self._clock() - self._t0) * RECORDING_RATE)

    def caller(self, pcm: bytes) -> None:
        """Caller audio that just arrived: PCM16 mono at :data:`RECORDING_RATE`."""
        now = self._now()
        arrived_at = now - len(pcm) // SAMPLE_BYTES
        end = self._caller.end
        # Jitter joins the stream; a real pause (a client that stopped sending) is silence.
        at = arrived_at if arrived_at - end > CALLER_GAP_S * RECORDING_RATE else end
        self._caller.place(max(at, end), pcm)
        self._write(now)

    def agent(self, pcm: bytes, sample_rate: int) -> None:
        """Reply audio sent to the caller now: it plays after what is already queued."""
        if self._agent_resampler is None or self._agent_resampler.in_rate != sample_rate:
            self._agent_resampler = Resampler(sample_rate, RECORDING_RATE)
        now = self._now()
        self._agent.place(max(now, self._agent.end), self._agent_resampler(pcm))
        self._write(now)

    def barge_in(self) -> None:
        """The caller interrupted: the agent audio not yet played never was."""
        self._agent.cut(self._now())
        self._agent_resampler = None

    def mark(self, turn_id: int, speaker: str) -> None:
        """Turn ``turn_id`` of ``speaker`` begins: the caller's speech began a
        pre-roll ago (the endpointer needs some speech to notice it); the
        agent's where its reply joins the playback queue."""
        now = self._now()
        if speaker == "agent":
            at = max(now, self._agent.end)
        else:
            at = max(0, now - PRE_ROLL_MS * RECORDING_RATE // 1000)
        self.marks.append(
            {"turn_id": turn_id, "speaker": speaker, "ms": at * 1000 // RECORDING_RATE}
        )

    def _write(self, now: int) -> None:
        """Append both channels up to :data:`WRITE_LAG_S` before ``now``."""
        stop = now - round(WRITE_LAG_S * RECORDING_RATE)
        if stop > self._written:
            self._append(stop)

    def _append(self, stop: int) -> None:
        frames = np.column_stack((self._caller.take(stop), self._agent.take(stop)))
        self._wav.writeframesraw(frames.astype("<i2").tobytes())
        self._written = stop

    def finish(self) -> Finished:
        """End the recording now (caller audio that came early is kept) and
        close the file; ``wave`` writes the header's final sizes."""
        stop = max(self._now(), self._caller.end, self._written)
        self._append(stop)
        self._wav.close()
        return Finished(self.path, stop * 1000 // RECORDING_RATE, self.marks)

    def discard(self) -> None:
        """Close and delete the file (the call cannot be recorded after all)."""
        self._wav.close()
        self.path.unlink(missing_ok=True)


def store(session_id: str, finished: Finished) -> Recording | None:
    """Hand the finished file to the "recordings" storage and save its record.

    A session keeps the recording of its first connection: when one was saved
    already (the caller reconnected), this file is dropped. The local file is
    removed either way.
    """
    try:
        if Recording.objects.filter(session__pk=session_id).exists():
            logger.info("session %s: already recorded; a reconnect's audio is dropped", session_id)
            return None
        size = finished.path.stat().st_size
        recording = Recording(
            session_id=session_id,
            sample_rate=RECORDING_RATE,
            duration_ms=finished.duration_ms,
            size_bytes=size,
            marks=finished.marks,
        )
        with finished.path.open("rb") as handle:
            recording.file.save(f"{session_id}.wav", File(handle), save=False)
        try:
            with transaction.atomic():
                recording.save(force_insert=True)
        except IntegrityError:
            # Another connection of the call saved first (or the session is gone).
            recording.file.delete(save=False)
            return None
        return recording
    finally:
        finished.path.unlink(missing_ok=True)


def recording_response(request: HttpRequest, session: CallSession) -> HttpResponseBase:
    """The session's recording as ``audio/wav``, whole or by range; 404 when the
    call was not recorded (or its file is gone from the storage)."""
    recording = Recording.objects.filter(session=session).first()
    if recording is None:
        raise Http404("This session has no recording.")
    try:
        return ranged_file_response(
            request,
            recording.file,
            recording.size_bytes,
            "audio/wav",
            f"recording-{session.id}.wav",
        )
    except FileNotFoundError as exc:
        logger.error("session %s: the recording's file is missing", session.id)
        raise Http404("This session's recording is missing from the storage.") from exc
