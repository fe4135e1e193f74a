"""G.711 μ-law and the phone's 8 kHz: the codec's error, pitch and level, silence."""

import numpy as np
import pytest
import soxr

from calls.telephony.audio import (
    FRAME_BYTES,
    MULAW_SILENCE,
    PHONE_RATE,
    PhoneEncoder,
    decode_mulaw,
    encode_mulaw,
    from_phone,
    to_phone,
)

CLIP = 32635  # the largest magnitude μ-law codes


def pcm(samples: np.ndarray) -> bytes:
    return np.asarray(samples).astype("<i2").tobytes()


def samples_of(pcm16: bytes) -> np.ndarray:
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float64)


def tone(rate: int, seconds: float = 1.0, hz: float = 440.0, amplitude: float = 8000.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return pcm(np.round(amplitude * np.sin(2 * np.pi * hz * t)))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x)))


def test_round_trip_error_stays_within_mulaw_quantisation():
    """Every PCM16 value comes back within half a step of its segment.

    A segment's step is 2^(segment+3) and covers magnitudes of about 16 steps,
    so the error is at most (|x| + bias) / 32 plus rounding.
    """
    values = np.arange(-CLIP, CLIP + 1)
    decoded = samples_of(decode_mulaw(encode_mulaw(pcm(values))))
    error = np.abs(decoded - values)
    assert np.all(error <= (np.abs(values) + 132) / 32 + 1)
    assert error.max() <= 512  # the top segment's half step (steps of 1024)


def test_every_code_decodes_to_a_value_that_encodes_back_to_it():
    codes = bytes(range(256))
    # 0x7F and 0xFF both mean 0 (+0 and -0): zero encodes as 0xFF.
    again = encode_mulaw(decode_mulaw(codes))
    assert [a for a, b in zip(again, codes, strict=True) if a != b] == [0xFF]


def test_known_codes():
    assert encode_mulaw(pcm([0, 32767, -32768, 1, -1])) == bytes([0xFF, 0x80, 0x00, 0xFF, 0x7F])
    assert samples_of(decode_mulaw(bytes([0x80, 0x00]))).tolist() == [32124, -32124]


def test_a_440_hz_tone_keeps_pitch_and_level_through_the_phone():
    """Piper's 22050 Hz → μ-law 8 kHz → 16 kHz (what VAD and STT take)."""
    original = samples_of(tone(22050))
    mulaw = to_phone(tone(22050), 22050)
    assert len(mulaw) == PHONE_RATE  # one byte per sample, one second
    back = soxr.resample(samples_of(from_phone(mulaw)).astype(np.float32), PHONE_RATE, 16000)

    spectrum = np.abs(np.fft.rfft(back * np.hanning(len(back))))
    peak_hz = np.argmax(spectrum) * 16000 / len(back)
    assert abs(peak_hz - 440) <= 2

    # Level within 0.5 dB (skip the resamplers' edges).
    middle = slice(len(back) // 10, -len(back) // 10)
    level_db = 20 * np.log10(rms(back[middle]) / rms(original))
    assert abs(level_db) < 0.5


def test_silence_stays_silence():
    assert to_phone(bytes(2 * 22050), 22050) == bytes([MULAW_SILENCE]) * PHONE_RATE
    assert not samples_of(from_phone(bytes([MULAW_SILENCE]) * FRAME_BYTES)).any()


def test_near_silence_stays_near_silence():
    hiss = np.random.default_rng(7).normal(0, 2, 16000)
    decoded = samples_of(from_phone(to_phone(pcm(np.round(hiss)), 16000)))
    assert np.abs(decoded).max() <= 8


def test_streamed_chunks_match_the_whole_clip():
    """Chunks of one stretch of speech leave no seams: as if resampled in one piece."""
    clip = tone(22050)
    encoder = PhoneEncoder(22050)
    chunk = 2205  # 100 ms
    parts = [encoder.encode(clip[i : i + 2 * chunk]) for i in range(0, len(clip), 2 * chunk)]
    parts.append(encoder.encode(b"", last=True))
    streamed = b"".join(parts)
    assert len(streamed) == PHONE_RATE
    whole = samples_of(decode_mulaw(to_phone(clip, 22050)))
    assert np.abs(samples_of(decode_mulaw(streamed)) - whole).max() <= 512


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100, 48000])
def test_every_rate_gives_8_khz(rate):
    assert len(to_phone(tone(rate, seconds=0.5), rate)) == PHONE_RATE // 2
