"""Endpointing on real speech: tests/data/question_16k.wav is Piper's en_US-joe-medium
saying "What time does the library open on Saturday?" (2.6 s, 16 kHz mono PCM16,
synthesized once with piper-tts and resampled with soxr)."""

import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from calls.vad import (
    VAD_RATE,
    Endpointer,
    Resampler,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    VadSettings,
)

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def speech() -> bytes:
    with wave.open(str(DATA / "question_16k.wav"), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        return wav.readframes(wav.getnframes())


def silence(ms: int, rate: int = VAD_RATE) -> bytes:
    return b"\0" * (rate * ms // 1000 * 2)


def noise(ms: int, level: float, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, level, VAD_RATE * ms // 1000).clip(-32768, 32767)
    return samples.astype("<i2").tobytes()


def run(endpointer: Endpointer, pcm: bytes, chunk_ms: int = 20, rate: int = VAD_RATE) -> list:
    size = rate * chunk_ms // 1000 * 2
    events = []
    for i in range(0, len(pcm), size):
        events.extend(endpointer.feed(pcm[i : i + size]))
    return events


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


def seconds(pcm: bytes) -> float:
    return len(pcm) / 2 / VAD_RATE


def test_one_spoken_question_is_one_utterance(speech):
    events = run(Endpointer(), silence(500) + speech + silence(1000))
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]
    ended = events[1]
    assert not ended.cut
    # The whole question plus at most pre-roll and the trailing silence.
    assert seconds(speech) - 0.1 <= ended.duration_ms / 1000 <= seconds(speech) + 1.0


def test_utterance_ends_only_after_the_trailing_silence(speech):
    endpointer = Endpointer(VadSettings(silence_ms=600))
    assert kinds(run(endpointer, speech + silence(300))) == ["SpeechStarted"]
    assert endpointer.in_speech
    assert kinds(run(endpointer, silence(600))) == ["SpeechEnded"]


def test_a_pause_hands_over_the_utterance_before_the_silence_ends_it(speech):
    endpointer = Endpointer(VadSettings(silence_ms=600, early_ms=250))
    events = run(endpointer, silence(300) + speech + silence(1000))
    assert kinds(events) == ["SpeechStarted", "SpeechPaused", "SpeechEnded"]
    paused, ended = events[1], events[2]
    # The pause's audio is the ended utterance less the rest of its silence,
    # and the end says nothing was said after it.
    assert ended.audio.startswith(paused.audio) and len(paused.audio) < len(ended.audio)
    assert not any(ended.audio[len(paused.audio) :])
    assert ended.pause == paused.pause == 1


def test_speech_after_a_pause_makes_the_pause_s_audio_incomplete(speech):
    endpointer = Endpointer(VadSettings(silence_ms=600, early_ms=250))
    events = run(endpointer, silence(300) + speech + silence(400) + speech + silence(1000))
    assert kinds(events) == ["SpeechStarted", "SpeechPaused", "SpeechPaused", "SpeechEnded"]
    # The second pause holds both questions; the end points to it, not the first.
    assert [e.pause for e in events[1:]] == [1, 2, 2]
    assert seconds(events[2].audio) > 2 * seconds(speech)


def test_no_pause_events_when_early_transcripts_are_off(speech):
    for settings in (VadSettings(early_ms=0), VadSettings(silence_ms=600, early_ms=600)):
        events = run(Endpointer(settings), speech + silence(1000))
        assert kinds(events) == ["SpeechStarted", "SpeechEnded"]
        assert events[1].pause is None


def test_an_utterance_cut_at_its_limit_points_to_no_pause(speech):
    settings = VadSettings(silence_ms=600, early_ms=250, max_utterance_ms=3500)
    events = run(Endpointer(settings), speech + silence(400) + speech)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert ended and ended[0].cut and ended[0].pause is None
    assert any(isinstance(e, SpeechPaused) for e in events)


WORDS = VadSettings(silence_ms=600, early_ms=250, complete_ms=400, trailing_off_ms=1000)


def until_paused(endpointer: Endpointer, speech: bytes) -> SpeechPaused:
    events = run(endpointer, silence(300) + speech + silence(300))
    assert kinds(events) == ["SpeechStarted", "SpeechPaused"]
    return events[1]


def test_a_complete_thought_ends_the_utterance_at_the_shorter_silence(speech):
    endpointer = Endpointer(WORDS)
    paused = until_paused(endpointer, speech)  # 300 ms of silence so far
    assert endpointer.words_heard(paused.pause, True) is None
    events = run(endpointer, silence(150))
    assert kinds(events) == ["SpeechEnded"] and events[0].pause == paused.pause


def test_words_known_after_the_shorter_silence_end_the_utterance_at_once(speech):
    endpointer = Endpointer(WORDS)
    paused = until_paused(endpointer, speech)
    assert run(endpointer, silence(150)) == []  # 450 ms: past complete_ms
    ended = endpointer.words_heard(paused.pause, True)
    assert isinstance(ended, SpeechEnded) and not ended.cut and ended.pause == paused.pause
    assert not endpointer.in_speech and run(endpointer, silence(1000)) == []


def test_words_that_trail_off_wait_for_the_longer_silence(speech):
    endpointer = Endpointer(WORDS)
    paused = until_paused(endpointer, speech)
    assert endpointer.words_heard(paused.pause, False) is None
    # 300 + 400 = 700 ms of silence would have ended it; now 1000 ms does.
    assert run(endpointer, silence(400)) == []
    assert kinds(run(endpointer, silence(400))) == ["SpeechEnded"]
    # The next utterance is back to the usual silence.
    events = run(endpointer, speech + silence(700))
    assert kinds(events) == ["SpeechStarted", "SpeechPaused", "SpeechEnded"]


def test_words_of_an_old_pause_or_after_more_speech_change_nothing(speech):
    endpointer = Endpointer(WORDS)
    first = until_paused(endpointer, speech)
    run(endpointer, speech)  # the caller went on
    assert endpointer.words_heard(first.pause, True) is None
    second = run(endpointer, silence(300))[0]
    assert endpointer.words_heard(first.pause, True) is None  # a pause of the past
    assert endpointer.words_heard(second.pause, None) is None  # no words: the silence decides
    assert kinds(run(endpointer, silence(300))) == ["SpeechEnded"]
    assert endpointer.words_heard(second.pause, True) is None  # already ended


def test_with_the_rule_off_the_words_change_nothing(speech):
    endpointer = Endpointer(VadSettings(silence_ms=600, early_ms=250))
    paused = until_paused(endpointer, speech)
    assert endpointer.words_heard(paused.pause, True) is None
    assert endpointer.words_heard(paused.pause, False) is None
    assert run(endpointer, silence(150)) == []
    assert kinds(run(endpointer, silence(150))) == ["SpeechEnded"]


def test_silence_and_quiet_noise_are_not_speech():
    endpointer = Endpointer()
    assert run(endpointer, silence(3000)) == []
    assert run(endpointer, noise(3000, level=200)) == []
    assert not endpointer.in_speech


def test_a_click_shorter_than_the_threshold_starts_nothing(speech):
    # webrtcvad reports 60 ms of voice as 150 ms voiced (hangover); still no start.
    click = speech[int(0.5 * VAD_RATE) * 2 : int(0.56 * VAD_RATE) * 2]  # 60 ms of voice
    events = run(Endpointer(VadSettings(start_ms=150)), silence(500) + click + silence(1000))
    assert events == []


def test_voice_longer_than_the_threshold_starts_an_utterance(speech):
    burst = speech[int(0.5 * VAD_RATE) * 2 : int(0.75 * VAD_RATE) * 2]  # 250 ms of voice
    events = run(Endpointer(VadSettings(start_ms=150)), silence(500) + burst + silence(1000))
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]


def test_a_short_pause_keeps_one_utterance_a_long_one_splits(speech):
    pause_short = run(Endpointer(), speech + silence(250) + speech + silence(1000))
    assert kinds(pause_short) == ["SpeechStarted", "SpeechEnded"]
    pause_long = run(Endpointer(), speech + silence(1500) + speech + silence(1000))
    assert kinds(pause_long) == ["SpeechStarted", "SpeechEnded"] * 2


def test_too_long_utterance_is_cut_at_the_maximum(speech):
    endpointer = Endpointer(VadSettings(max_utterance_ms=2000))
    events = run(endpointer, speech + speech + silence(1000))
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert ended[0].cut
    assert ended[0].duration_ms == pytest.approx(2000, abs=30)
    assert isinstance(events[0], SpeechStarted)


def test_chunk_size_does_not_change_the_decision(speech):
    pcm = silence(400) + speech + silence(900)
    small = run(Endpointer(), pcm, chunk_ms=10)
    large = run(Endpointer(), pcm, chunk_ms=1000)
    assert kinds(small) == kinds(large) == ["SpeechStarted", "SpeechEnded"]
    assert small[1].audio == large[1].audio


def test_flush_hands_over_an_utterance_in_progress(speech):
    endpointer = Endpointer()
    run(endpointer, speech[: len(speech) // 2])
    ended = endpointer.flush()
    assert ended is not None and ended.cut
    assert endpointer.flush() is None


@pytest.mark.parametrize("rate", [8000, 24000, 44100, 48000])
def test_other_input_rates_are_resampled_to_16k(speech, rate):
    samples = np.frombuffer(speech, dtype="<i2")
    at_rate = soxr.resample(samples, VAD_RATE, rate).astype("<i2").tobytes()
    resample = Resampler(rate)
    endpointer = Endpointer()
    pcm = silence(500, rate) + at_rate + silence(1000, rate)
    size = rate * 20 // 1000 * 2
    events = []
    for i in range(0, len(pcm), size):
        events.extend(endpointer.feed(resample(pcm[i : i + size])))
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]
    assert events[1].duration_ms / 1000 == pytest.approx(seconds(speech) + 0.6, abs=0.7)


def test_speech_over_background_noise_is_still_one_utterance(speech):
    samples = np.frombuffer(silence(500) + speech + silence(1000), dtype="<i2").astype(float)
    hiss = np.random.default_rng(1).normal(0, 150, len(samples))
    noisy = (samples + hiss).clip(-32768, 32767).astype("<i2").tobytes()
    assert kinds(run(Endpointer(), noisy)) == ["SpeechStarted", "SpeechEnded"]
