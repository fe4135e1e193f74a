"""G.711 μ-law at 8 kHz, the audio of the phone network and of Twilio Media Streams.

The codec is ITU-T G.711 μ-law as in the reference implementation (bias 132,
clip at 32635), done with numpy lookup tables: the stdlib's ``audioop`` is
deprecated and gone from Python 3.13. Resampling uses soxr, like the rest of
the pipeline. Everything takes and returns PCM16 little-endian mono bytes.
"""

import numpy as np
import soxr

PHONE_RATE = 8000
# Twilio sends and expects 20 ms media payloads: 160 μ-law bytes.
FRAME_MS = 20
FRAME_BYTES = PHONE_RATE * FRAME_MS // 1000
# μ-law's silence: the code of 0 (the reference encoder's output for 0 and ±1..3).
MULAW_SILENCE = 0xFF

_BIAS = 0x84
_CLIP = 32635


def _encode(samples: np.ndarray) -> np.ndarray:
    """μ-law codes of int32 PCM16 values (the reference encoder, vectorized)."""
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), _CLIP) + _BIAS
    # The segment is the position of the highest set bit above bit 7 (0..7).
    exponent = np.floor(np.log2(magnitude >> 7)).astype(np.int32)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _decode(codes: np.ndarray) -> np.ndarray:
    """PCM16 values of μ-law codes: the middle of each code's step."""
    inverted = ~codes.astype(np.int32) & 0xFF
    exponent = (inverted >> 4) & 0x07
    magnitude = ((((inverted & 0x0F) << 3) + _BIAS) << exponent) - _BIAS
    return np.where(inverted & 0x80, -magnitude, magnitude).astype("<i2")


# Every int16 value (indexed by its unsigned 16-bit pattern) and every byte has
# one code: two table lookups replace the arithmetic per sample on the hot path.
_ENCODE_TABLE = _encode(np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32))
_DECODE_TABLE = _decode(np.arange(256, dtype=np.uint8))


def encode_mulaw(pcm16: bytes) -> bytes:
    """PCM16 little-endian bytes → one μ-law byte per sample (same rate)."""
    return _ENCODE_TABLE[np.frombuffer(pcm16, dtype="<u2")].tobytes()


def decode_mulaw(mulaw: bytes) -> bytes:
    """μ-law bytes → PCM16 little-endian bytes (same rate)."""
    return _DECODE_TABLE[np.frombuffer(mulaw, dtype=np.uint8)].tobytes()


class PhoneEncoder:
    """PCM16 at ``rate`` → μ-law 8 kHz, one stream at a time.

    Feed the chunks of one stretch of speech in order: the resampler keeps its
    filter state between chunks, so chunk boundaries make no clicks (resampling
    chunks separately would). ``last=True`` flushes the filter's tail.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        # float32, not int16: soxr dithers int16 output, which would turn the
        # digital silence between sentences into ±1 noise (codes 0xFF/0x7F).
        self._resampler = (
            None
            if rate == PHONE_RATE
            else soxr.ResampleStream(rate, PHONE_RATE, 1, dtype="float32", quality="HQ")
        )

    def encode(self, pcm16: bytes, last: bool = False) -> bytes:
        if self._resampler is not None:
            samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
            resampled = self._resampler.resample_chunk(samples, last=last)
            pcm16 = np.clip(np.rint(resampled), -32768, 32767).astype("<i2").tobytes()
        return encode_mulaw(pcm16)


def to_phone(pcm16: bytes, rate: int) -> bytes:
    """A whole PCM16 clip at ``rate`` → μ-law at 8 kHz."""
    return PhoneEncoder(rate).encode(pcm16, last=True)


def from_phone(mulaw: bytes) -> bytes:
    """μ-law at 8 kHz → PCM16 at 8 kHz (``PHONE_RATE``)."""
    return decode_mulaw(mulaw)
