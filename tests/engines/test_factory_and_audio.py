"""Provider selection by settings, and the audio helpers."""

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings

from agents.models import Agent
from tests.fakes.deepgram import API_KEY
from tests.fakes.server import FakeServer
from workers.audio import (
    duration_s,
    read_wav,
    resample,
    rms,
    validate_pcm16,
    wav_bytes,
    write_wav,
)
from workers.engines import get_llm, get_stt, get_tts, reset_engines
from workers.engines.base import EngineError
from workers.engines.ollama_llm import OllamaLLM
from workers.engines.piper_tts import DEFAULT_VOICE, PiperTTS
from workers.stt import hear


@pytest.fixture
def fresh_engines() -> Iterator[None]:
    """Forget cached engines before and after, so settings overrides take effect."""
    reset_engines()
    yield
    reset_engines()


def tone(seconds: float, rate: int, hz: float = 440.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 0.5 * 32767).astype("<i2").tobytes()


def test_ollama_is_selected_by_settings(fresh_engines: None, ollama_fake: FakeServer) -> None:
    with override_settings(VOICE_LLM="ollama", OLLAMA_HOST=ollama_fake.url):
        llm = get_llm()
        assert isinstance(llm, OllamaLLM)
        assert get_llm() is llm  # one engine per process
        assert llm.models() == ["qwen2.5:1.5b", "llama3.2:1b"]


def test_the_stt_worker_sends_the_agents_vocabulary_to_deepgram(
    fresh_engines: None, deepgram: FakeServer
) -> None:
    """Deepgram sees the agent's name and examples as keyterms, so it spells them right."""
    agent = Agent(
        name="Zephyrine Bakery",
        intents=[{"name": "order"}, {"name": "farewell"}],
        examples={"order": ["two sourdough loaves", "a kouign-amann"], "farewell": ["ta-ra"]},
    ).pipeline_config()
    deepgram.options["transcript"] = "two sourdough loaves"
    with override_settings(
        VOICE_STT="deepgram", DEEPGRAM_API_KEY=API_KEY, DEEPGRAM_BASE_URL=deepgram.url
    ):
        heard = hear(agent, tone(0.5, 16000), 16000, tag="session-7")
    assert heard.text == "two sourdough loaves"
    [request] = deepgram.requests
    assert request.query["keyterm"] == [
        "Zephyrine Bakery",
        "two sourdough loaves",
        "a kouign-amann",
        "ta-ra",
    ]


def test_hints_steer_whisper_to_the_agents_spelling(fresh_engines: None, piper: PiperTTS) -> None:
    """With STT_LOCAL_HINTS, a name Whisper cannot know comes out as the agent spells it."""
    audio = b"".join(piper.stream("Hello Xiomara, I'd like some bread.", DEFAULT_VOICE))
    plain = get_stt().transcribe(audio, piper.sample_rate, hints=["Xiomara"]).text
    reset_engines()
    with override_settings(STT_LOCAL_HINTS=True):
        hinted = get_stt().transcribe(audio, piper.sample_rate, hints=["Xiomara"]).text
    assert "Xiomara" not in plain
    assert "Xiomara" in hinted


@pytest.mark.parametrize(
    ("setting", "factory", "code", "hint"),
    [
        (
            {"VOICE_STT": "deepgram", "DEEPGRAM_API_KEY": ""},
            get_stt,
            "missing_key",
            "DEEPGRAM_API_KEY",
        ),
        (
            {"VOICE_TTS": "cartesia", "CARTESIA_API_KEY": ""},
            get_tts,
            "missing_key",
            "CARTESIA_API_KEY",
        ),
        ({"VOICE_LLM": "openai"}, get_llm, "failed", "local, ollama"),
        (
            {"VOICE_STT": "local", "STT_MODEL": "/nonexistent/model"},
            get_stt,
            "unknown_model",
            "/nonexistent",
        ),
        (
            {"VOICE_LLM": "local", "LLM_MODEL_PATH": "/nonexistent.gguf"},
            get_llm,
            "unknown_model",
            "/nonexistent",
        ),
    ],
)
def test_misconfiguration_is_one_typed_error(
    fresh_engines: None, setting: dict[str, str], factory: object, code: str, hint: str
) -> None:
    with override_settings(**setting), pytest.raises(EngineError) as err:
        factory()  # type: ignore[operator]
    assert err.value.code == code
    assert hint in err.value.message


def test_resample_keeps_duration_and_pitch() -> None:
    audio = tone(1.0, 16000)
    up = resample(audio, 16000, 22050)

    assert duration_s(up, 22050) == pytest.approx(1.0, abs=0.01)
    samples = np.frombuffer(up, dtype="<i2").astype(float)
    peak_hz = np.argmax(np.abs(np.fft.rfft(samples))) * 22050 / len(samples)
    assert peak_hz == pytest.approx(440, abs=2)


def test_wav_round_trip(tmp_path: Path) -> None:
    audio = tone(0.25, 22050)
    assert read_wav(wav_bytes(audio, 22050)) == (audio, 22050)
    path = tmp_path / "a.wav"
    write_wav(path, audio, 22050)
    assert read_wav(path) == (audio, 22050)


def test_rms_tells_silence_from_sound() -> None:
    assert rms(b"") == 0.0
    assert rms(b"\x00\x00" * 100) == 0.0
    assert rms(tone(0.1, 16000)) == pytest.approx(0.5 / np.sqrt(2), abs=0.01)


@pytest.mark.parametrize(
    ("audio", "rate", "limit", "message"),
    [
        (b"\x00\x00\x00", 16000, None, "even number"),
        (b"\x00\x00", 4000, None, "outside"),
        (b"\x00\x00" * 16000 * 3, 16000, 2.0, "more than 2.0 s"),
    ],
)
def test_validate_pcm16_refuses_bad_audio(
    audio: bytes, rate: int, limit: float | None, message: str
) -> None:
    with pytest.raises(EngineError) as err:
        validate_pcm16(audio, rate, limit)
    assert err.value.code == "bad_audio"
    assert message in err.value.message


def test_read_wav_mixes_stereo_down_to_mono() -> None:
    left = np.full(100, 1000, dtype="<i2")
    right = np.full(100, 3000, dtype="<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(np.column_stack([left, right]).tobytes())
    audio, rate = read_wav(buffer.getvalue())
    assert rate == 16000
    assert set(np.frombuffer(audio, dtype="<i2")) == {2000}


def test_read_wav_refuses_other_sample_widths() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * 100)
    with pytest.raises(EngineError) as err:
        read_wav(buffer.getvalue())
    assert err.value.code == "bad_audio"
