"""The call recorder on a clock the test turns: where each party's audio lands
in the stereo WAV, what a barge-in removes, and that the file grows as the call goes."""

import wave
from pathlib import Path

import numpy as np

from calls.recording import RECORDING_RATE, CallRecorder
from tests.recordings import Clock, channel_energy, feed_caller, tone

LOUD = 0.05
QUIET = 0.002


def finished_energy(recorder: CallRecorder):
    finished = recorder.finish()
    return finished, channel_energy(finished.path.read_bytes())


def test_caller_left_agent_right_on_the_call_clock(tmp_path: Path) -> None:
    clock = Clock()
    recorder = CallRecorder(tmp_path / "call.wav", clock=clock)
    feed_caller(recorder, clock, 1.0, 1.0)
    clock.t = 3.0
    recorder.agent(tone(2.0, 22050), 22050)  # sent at once: played 3–5 s
    clock.t = 6.0

    finished, energy = finished_energy(recorder)

    assert energy.rate == RECORDING_RATE and abs(energy.seconds - 6.0) < 0.01
    assert finished.duration_ms == 6000
    assert (energy.span("left", 1.0, 2.0) > LOUD).all()
    assert (energy.span("right", 1.0, 2.0) < QUIET).all()
    assert (energy.span("right", 3.0, 5.0) > LOUD).all()
    assert (energy.span("left", 3.0, 5.0) < QUIET).all()
    assert (energy.span("left", 0.0, 1.0) < QUIET).all()
    assert (energy.span("right", 5.0, 6.0) < QUIET).all()


def test_replies_queue_behind_what_is_still_playing(tmp_path: Path) -> None:
    clock = Clock()
    recorder = CallRecorder(tmp_path / "call.wav", clock=clock)
    clock.t = 1.0
    recorder.mark(0, "agent")
    recorder.agent(tone(1.0, 22050), 22050)
    clock.t = 1.5
    recorder.mark(1, "agent")  # joins the queue where the first reply ends
    recorder.agent(tone(1.0, 22050), 22050)
    clock.t = 4.0

    finished, energy = finished_energy(recorder)

    assert (energy.span("right", 1.0, 3.0) > LOUD).all()
    assert (energy.span("right", 3.0, 4.0) < QUIET).all()
    first, second = (m["ms"] for m in finished.marks)
    # The streaming resampler holds back a few ms of the first reply's end.
    assert first == 1000 and abs(second - 2000) <= 30


def test_barge_in_drops_the_agent_audio_not_yet_played(tmp_path: Path) -> None:
    clock = Clock()
    recorder = CallRecorder(tmp_path / "call.wav", clock=clock)
    clock.t = 1.0
    recorder.agent(tone(4.0, 22050), 22050)  # would play 1–5 s
    clock.t = 2.0
    recorder.barge_in()
    feed_caller(recorder, clock, 2.0, 1.0)
    clock.t = 4.0
    recorder.agent(tone(0.5, 22050), 22050)  # the next reply starts now, not after 5 s
    clock.t = 6.0

    _, energy = finished_energy(recorder)

    assert (energy.span("right", 1.0, 2.0) > LOUD).all()
    assert (energy.span("right", 2.0, 4.0) < QUIET).all()
    assert (energy.span("right", 4.0, 4.5) > LOUD).all()
    assert (energy.span("right", 4.5, 6.0) < QUIET).all()
    assert (energy.span("left", 2.0, 3.0) > LOUD).all()


def test_a_caller_who_stops_sending_leaves_silence_and_jitter_leaves_none(
    tmp_path: Path,
) -> None:
    clock = Clock()
    recorder = CallRecorder(tmp_path / "call.wav", clock=clock)
    feed_caller(recorder, clock, 0.0, 1.0)
    # 50 ms late, then two frames at once: jitter, joined to the stream.
    clock.t = 1.05
    recorder.caller(tone(0.02))
    recorder.caller(tone(0.02))
    feed_caller(recorder, clock, 1.05, 0.95)
    # No frame for a second (a muted client), then speech again.
    feed_caller(recorder, clock, 3.0, 1.0)
    clock.t = 4.0

    _, energy = finished_energy(recorder)

    assert (energy.span("left", 0.0, 2.0) > LOUD).all()
    assert (energy.span("left", 2.05, 2.95) < QUIET).all()
    assert (energy.span("left", 3.0, 4.0) > LOUD).all()


def test_the_file_grows_during_the_call_and_gets_its_header_at_the_end(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "call.wav"
    recorder = CallRecorder(path, clock=clock)
    feed_caller(recorder, clock, 0.0, 5.0)

    # Everything but the last WRITE_LAG_S is on disk already.
    assert path.stat().st_size >= 4 * RECORDING_RATE * 4
    finished = recorder.finish()
    with wave.open(str(finished.path), "rb") as wav:
        assert wav.getnframes() == 5 * RECORDING_RATE
        assert (wav.getnchannels(), wav.getframerate()) == (2, RECORDING_RATE)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert frames.size == 2 * 5 * RECORDING_RATE


def test_a_discarded_recording_leaves_no_file(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path / "spool" / "call.wav", clock=Clock())
    recorder.discard()
    assert not (tmp_path / "spool" / "call.wav").exists()
