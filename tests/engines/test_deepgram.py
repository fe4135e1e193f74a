"""Deepgram engine against a fake /v1/listen, through the real deepgram-sdk."""

import io
import wave

import numpy as np
import pytest

from tests.engines.conftest import TIMEOUT_S
from tests.fakes.deepgram import API_KEY
from tests.fakes.server import FakeServer
from workers.engines.base import EngineError
from workers.engines.deepgram_stt import DeepgramSTT

AUDIO = (np.sin(np.arange(8000) / 5) * 8000).astype("<i2").tobytes()  # 0.5 s at 16 kHz


def engine(url: str, key: str = API_KEY) -> DeepgramSTT:
    return DeepgramSTT(key, url, TIMEOUT_S)


def test_transcribe_sends_wav_with_token_auth_and_reads_transcript(deepgram: FakeServer) -> None:
    deepgram.options["transcript"] = "book a table for two"
    result = engine(deepgram.url).transcribe(AUDIO, 16000, "en-US")

    assert result.text == "book a table for two"
    assert result.confidence == pytest.approx(0.97)
    [request] = deepgram.requests
    assert request.method == "POST"
    assert request.path == "/v1/listen"
    assert request.headers["authorization"] == f"Token {API_KEY}"
    assert request.query["model"] == ["nova-3"]
    assert request.query["language"] == ["en-US"]
    with wave.open(io.BytesIO(request.body)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.readframes(wav.getnframes()) == AUDIO


def test_tag_labels_the_request_for_usage_reports(deepgram: FakeServer) -> None:
    engine(deepgram.url).transcribe(AUDIO, 16000, tag="session-42")
    engine(deepgram.url).transcribe(AUDIO, 16000)

    tagged, untagged = deepgram.requests
    assert tagged.query["tag"] == ["session-42"]
    assert "tag" not in untagged.query


def test_wrong_key_is_unauthorized(deepgram: FakeServer) -> None:
    with pytest.raises(EngineError) as err:
        engine(deepgram.url, key="wrong").transcribe(AUDIO, 16000)
    assert err.value.code == "unauthorized"
    assert "deepgram" in err.value.message


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("error", "failed"),
        ("slow", "timeout"),
        ("malformed", "bad_response"),
        ("wrong_shape", "bad_response"),
    ],
)
def test_server_failures_map_to_codes(deepgram: FakeServer, mode: str, code: str) -> None:
    deepgram.mode = mode
    with pytest.raises(EngineError) as err:
        engine(deepgram.url).transcribe(AUDIO, 16000)
    assert (err.value.stage, err.value.provider, err.value.code) == ("stt", "deepgram", code)


def test_unreachable_server(closed_port_url: str) -> None:
    with pytest.raises(EngineError) as err:
        engine(closed_port_url).transcribe(AUDIO, 16000)
    assert err.value.code == "unreachable"


def test_missing_key_is_reported_before_any_request() -> None:
    with pytest.raises(EngineError) as err:
        DeepgramSTT("", "http://127.0.0.1:9", TIMEOUT_S)
    assert err.value.code == "missing_key"
    assert "DEEPGRAM_API_KEY" in err.value.message


def test_odd_length_audio_is_refused_without_a_request(deepgram: FakeServer) -> None:
    with pytest.raises(EngineError) as err:
        engine(deepgram.url).transcribe(AUDIO + b"\x00", 16000)
    assert err.value.code == "bad_audio"
    assert deepgram.requests == []
