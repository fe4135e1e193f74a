"""Cartesia engine against a fake /tts/bytes, through the real cartesia SDK."""

import pytest

from tests.engines.conftest import TIMEOUT_S
from tests.fakes.cartesia import API_KEY, VOICE_ID
from tests.fakes.server import FakeServer
from workers.engines.base import EngineError
from workers.engines.cartesia_tts import CartesiaTTS

AUDIO = bytes(range(256)) * 40  # 10240 bytes of "PCM"


def engine(url: str, key: str = API_KEY, default_voice: str = "") -> CartesiaTTS:
    return CartesiaTTS(key, url, TIMEOUT_S, default_voice=default_voice)


def test_stream_posts_raw_pcm_request_and_yields_audio_while_it_arrives(
    cartesia_fake: FakeServer,
) -> None:
    cartesia_fake.options["audio"] = AUDIO
    chunks = engine(cartesia_fake.url).stream("Hello there.", VOICE_ID)

    first = next(chunks)
    cartesia_fake.release.set()
    audio = first + b"".join(chunks)

    assert audio == AUDIO
    assert cartesia_fake.released_in_time is True
    [request] = cartesia_fake.requests
    assert (request.method, request.path) == ("POST", "/tts/bytes")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["cartesia-version"]
    body = request.json()
    assert body["transcript"] == "Hello there."
    assert body["voice"] == {"id": VOICE_ID}
    assert body["output_format"] == {
        "container": "raw",
        "encoding": "pcm_s16le",
        "sample_rate": CartesiaTTS.sample_rate,
    }


def test_chunks_never_split_a_sample(cartesia_fake: FakeServer) -> None:
    cartesia_fake.options["audio"] = b"\x01\x02" * 1001  # thirds of odd length
    cartesia_fake.release.set()
    chunks = list(engine(cartesia_fake.url).stream("Hi.", VOICE_ID))
    assert all(len(c) % 2 == 0 for c in chunks)
    assert b"".join(chunks) == b"\x01\x02" * 1001


def test_local_voice_name_uses_the_configured_cartesia_voice(cartesia_fake: FakeServer) -> None:
    cartesia_fake.release.set()
    list(engine(cartesia_fake.url, default_voice=VOICE_ID).stream("Hi.", "en_US-joe-medium"))
    assert cartesia_fake.requests[0].json()["voice"]["id"] == VOICE_ID


def test_local_voice_name_without_a_default_is_an_unknown_voice(cartesia_fake: FakeServer) -> None:
    with pytest.raises(EngineError) as err:
        list(engine(cartesia_fake.url).stream("Hi.", "en_US-joe-medium"))
    assert err.value.code == "unknown_voice"
    assert "CARTESIA_VOICE_ID" in err.value.message
    assert cartesia_fake.requests == []


def test_voice_the_server_does_not_know(cartesia_fake: FakeServer) -> None:
    with pytest.raises(EngineError) as err:
        list(engine(cartesia_fake.url).stream("Hi.", "00000000-0000-0000-0000-000000000000"))
    assert err.value.code == "unknown_voice"


def test_wrong_key_is_unauthorized(cartesia_fake: FakeServer) -> None:
    with pytest.raises(EngineError) as err:
        list(engine(cartesia_fake.url, key="wrong").stream("Hi.", VOICE_ID))
    assert err.value.code == "unauthorized"


@pytest.mark.parametrize(
    ("mode", "code"), [("error", "failed"), ("slow", "timeout"), ("malformed", "bad_response")]
)
def test_server_failures_map_to_codes(cartesia_fake: FakeServer, mode: str, code: str) -> None:
    cartesia_fake.mode = mode
    with pytest.raises(EngineError) as err:
        list(engine(cartesia_fake.url).stream("Hi.", VOICE_ID))
    assert (err.value.stage, err.value.provider, err.value.code) == ("tts", "cartesia", code)


def test_unreachable_server(closed_port_url: str) -> None:
    with pytest.raises(EngineError) as err:
        list(engine(closed_port_url).stream("Hi.", VOICE_ID))
    assert err.value.code == "unreachable"


def test_missing_key() -> None:
    with pytest.raises(EngineError) as err:
        CartesiaTTS("", "", TIMEOUT_S)
    assert err.value.code == "missing_key"
