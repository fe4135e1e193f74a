"""A caller's speech for the benchmarks: a spoken question, streamed like a microphone.

Shared by ``bench.phone`` (one call at a time, both transports) and
``bench.load`` (many protocol v1 callers at once). The question is trimmed so
that it ends on its last voiced 20 ms frame: that is where the caller's
speech ends and the latency figures start. Nothing here sets Django up
(``calls.vad`` reads no setting unless asked), except :func:`spoken_question`,
which asks the local Piper voice.
"""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from calls.telephony.audio import FRAME_BYTES, MULAW_SILENCE, to_phone
from calls.vad import Endpointer, SpeechEnded, VadSettings
from workers.audio import SAMPLE_WIDTH, read_wav, resample, rms

CALLER_RATE = 16000  # protocol v1's default input rate
FRAME_MS = 20  # a microphone's frame, and Twilio's media payload
V1_FRAME_BYTES = CALLER_RATE * FRAME_MS // 1000 * SAMPLE_WIDTH
V1_SILENCE = bytes(V1_FRAME_BYTES)
# A 20 ms frame louder than this (RMS, full scale 1.0; about -40 dBFS) is
# voiced: the question is cut after its last such frame.
VOICED_RMS = 0.01
# Silence before the question, as a caller is quiet for a moment after the line opens.
LEAD_IN_S = 0.3
# The server's own default; the stacks are started without changing it.
VAD_SILENCE_MS = int(os.environ.get("VOICE_VAD_SILENCE_MS", "600"))
# The words of a pause end the server's utterance sooner or later than the
# silence alone (VOICE_VAD_COMPLETE_MS / _TRAILING_OFF_MS). A stack whose
# callers measure the endpointing with caller_endpointer is started with this,
# so that both endpointers end on the same frame.
SILENCE_ENDPOINTING = {"VOICE_VAD_COMPLETE_MS": "0", "VOICE_VAD_TRAILING_OFF_MS": "0"}
# Piper's en_US-joe-medium saying RECORDED_TEXT (tests/test_vad.py describes it):
# a real voice without loading Piper in the benchmark process.
RECORDED_QUESTION = Path(__file__).resolve().parents[1] / "tests" / "data" / "question_16k.wav"
RECORDED_TEXT = "What time does the library open on Saturday?"


@dataclass
class Utterance:
    """The caller's question, ready to stream on either transport."""

    text: str
    pcm16k: bytes  # PCM16 16 kHz, from the first to the last voiced 20 ms frame
    # Protocol v1 accepts 10-1000 ms frames; Twilio's media is always 20 ms.
    v1_frame_ms: int = FRAME_MS

    @property
    def seconds(self) -> float:
        return len(self.pcm16k) / SAMPLE_WIDTH / CALLER_RATE

    @property
    def v1_frame_bytes(self) -> int:
        return CALLER_RATE * self.v1_frame_ms // 1000 * SAMPLE_WIDTH

    def v1_frames(self) -> list[bytes]:
        """The question as protocol v1 binary frames: PCM16 16 kHz, ``v1_frame_ms`` each."""
        return chunks(self.pcm16k, self.v1_frame_bytes, b"\0")

    def phone_frames(self) -> list[bytes]:
        """The question as Media Streams payloads: μ-law 8 kHz, 20 ms each."""
        return chunks(to_phone(self.pcm16k, CALLER_RATE), FRAME_BYTES, bytes([MULAW_SILENCE]))


def chunks(audio: bytes, size: int, pad: bytes) -> list[bytes]:
    """``audio`` in pieces of ``size`` bytes, the last one padded with ``pad``."""
    # The bench's own version of tests/pipeline/wire.py's ``frames`` (tests are
    # not importable from here), for μ-law as well as PCM16.
    pieces = [audio[i : i + size] for i in range(0, len(audio), size)]
    if pieces and len(pieces[-1]) < size:
        pieces[-1] += pad * ((size - len(pieces[-1])) // len(pad))
    return pieces


def voiced_span(pcm16: bytes, frame_bytes: int) -> bytes:
    """``pcm16`` from its first to its last frame louder than :data:`VOICED_RMS`."""
    frames = chunks(pcm16, frame_bytes, b"\0")
    voiced = [i for i, frame in enumerate(frames) if rms(frame) > VOICED_RMS]
    if not voiced:
        raise RuntimeError("the question is silent")
    return b"".join(frames[voiced[0] : voiced[-1] + 1])


def recorded_question() -> Utterance:
    """:data:`RECORDED_TEXT` as recorded in tests/data, trimmed to its voiced span."""
    pcm, rate = read_wav(RECORDED_QUESTION)
    return Utterance(RECORDED_TEXT, voiced_span(resample(pcm, rate, CALLER_RATE), V1_FRAME_BYTES))


def spoken_question(text: str) -> Utterance:
    """``text`` said by the local Piper voice, at 16 kHz, trimmed to its voiced span.

    Piper comes from ``workers.engines.get_tts`` as the TTS worker gets it,
    which reads Django settings. The caller's voice is always Piper's,
    whatever engines the stack runs.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproj.settings")
    import django

    django.setup()
    from django.conf import settings

    from agents.models import DEFAULT_VOICE
    from workers.engines import get_tts

    settings.VOICE_TTS = "local"  # the caller is real speech even when VOICE_TTS says otherwise
    tts = get_tts()
    speech = resample(b"".join(tts.stream(text, DEFAULT_VOICE)), tts.sample_rate, CALLER_RATE)
    return Utterance(text, voiced_span(speech, V1_FRAME_BYTES))


class SpeechTimed(Protocol):
    """What :func:`speak` notes the end of speech on."""

    speech_end: float | None  # monotonic: the last voiced frame was sent
    # monotonic: the frame went out with which the server's endpointer, fed
    # the same audio, has the silence it waits for (see caller_endpointer)
    vad_end: float | None


def caller_endpointer() -> Endpointer:
    """The server's endpointer with the stacks' settings (their defaults), for
    the caller to run over exactly the audio it sends.

    webrtcvad is deterministic, so this one ends the utterance on the very
    frame on which the server's does: the endpointing the design asks for
    (the silence, and webrtcvad's own hang-over of about 90 ms) is then
    measured from the audio alone, and what the server takes beyond it is
    its lag, part of the overhead.
    """
    return Endpointer(VadSettings(silence_ms=VAD_SILENCE_MS))


SendFrame = Callable[[bytes], Awaitable[None]]


async def speak(
    send: SendFrame,
    speech: Sequence[bytes],
    silence: bytes,
    timed: SpeechTimed,
    done: asyncio.Event,
    frame_ms: int = FRAME_MS,
    endpointer: Endpointer | None = None,
) -> None:
    """Stream like a microphone, a frame every ``frame_ms``: :data:`LEAD_IN_S`
    of ``silence``, the ``speech`` frames, then ``silence`` until ``done``;
    ``timed.speech_end`` is when the last speech frame went out, and with
    an ``endpointer`` (16 kHz PCM16 frames only, as the server sees them; one
    per call, fed every frame the call sends) ``timed.vad_end`` is when the
    frame went out on which it ended the utterance."""
    # The bench's own version of the tests' real-time streaming (wire.py's
    # ``stream_realtime``, the fake Twilio's ``say``), which must also mark the
    # end of speech and go on with silence until the reply is in.
    lead_in = round(LEAD_IN_S * 1000 / frame_ms)
    loop = asyncio.get_running_loop()
    began = loop.time()
    sent = 0
    while not done.is_set():
        # A microphone sends a frame once its audio is captured, at the end of
        # its time slot: larger frames arrive later, as they would for real.
        await asyncio.sleep(max(0.0, began + (sent + 1) * frame_ms / 1000 - loop.time()))
        speaking = lead_in <= sent < lead_in + len(speech)
        frame = speech[sent - lead_in] if speaking else silence
        await send(frame)
        sent += 1
        if endpointer is not None and any(
            isinstance(event, SpeechEnded) for event in endpointer.feed(frame)
        ):
            timed.vad_end = timed.vad_end or time.monotonic()
        if sent == lead_in + len(speech):
            timed.speech_end = time.monotonic()
