"""Speech fixtures rendered at test time by Piper, with its noise off.

Piper samples random noise into every rendering, so a sentence sounds a little
different each run, and the tiny STT misheard about one rendering in twenty of
the end-to-end question ("what is the capital of friends?", docs/engines.md).
With ``noise_scale`` and ``noise_w_scale`` at 0 a text renders to the same
bytes every run, so a test that passes once hears the same words every time.
"""

from piper import SynthesisConfig

from agents.models import DEFAULT_VOICE
from workers.audio import resample
from workers.engines import get_tts
from workers.engines.piper_tts import PiperTTS

CLIENT_RATE = 16000  # what a protocol v1 client streams
WITHOUT_NOISE = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)


def spoken(text: str, voice: str = DEFAULT_VOICE) -> bytes:
    """``text`` spoken by the Piper ``voice``, as 16 kHz PCM16 mono, the same every run."""
    tts = get_tts()
    assert isinstance(tts, PiperTTS), "speech fixtures need VOICE_TTS=local"
    return b"".join(
        resample(chunk.audio_int16_bytes, chunk.sample_rate, CLIENT_RATE)
        for chunk in tts.voice(voice).synthesize(text, syn_config=WITHOUT_NOISE)
    )
