"""Engine fixtures: fake provider servers per test, real local engines per session."""

from collections.abc import Iterator

import pytest

from tests.fakes.cartesia import cartesia_server
from tests.fakes.deepgram import deepgram_server
from tests.fakes.ollama import ollama_server
from tests.fakes.server import FakeServer
from workers.engines import get_classifier, get_llm, get_stt, get_tts
from workers.engines.intent_embedding import EmbeddingClassifier
from workers.engines.llamacpp_llm import LlamaCppLLM
from workers.engines.piper_tts import PiperTTS
from workers.engines.whisper_stt import WhisperSTT

# Short, so "slow" fakes (3 s) trip it quickly.
TIMEOUT_S = 1.0


@pytest.fixture
def deepgram() -> Iterator[FakeServer]:
    server = deepgram_server()
    yield server
    server.close()


@pytest.fixture
def ollama_fake() -> Iterator[FakeServer]:
    server = ollama_server()
    yield server
    server.close()


@pytest.fixture
def cartesia_fake() -> Iterator[FakeServer]:
    server = cartesia_server()
    yield server
    server.close()


# Models load once per test session, through the factory the workers and
# commands use (default settings: the local providers).
@pytest.fixture(scope="session")
def whisper() -> WhisperSTT:
    engine = get_stt()
    assert isinstance(engine, WhisperSTT), "run the engine tests with VOICE_STT=local"
    return engine


@pytest.fixture(scope="session")
def llama() -> LlamaCppLLM:
    engine = get_llm()
    assert isinstance(engine, LlamaCppLLM), "run the engine tests with VOICE_LLM=local"
    return engine


@pytest.fixture(scope="session")
def embedding() -> EmbeddingClassifier:
    engine = get_classifier()
    assert isinstance(engine, EmbeddingClassifier), "run with CLASSIFIER_LOCAL=embedding"
    return engine


@pytest.fixture(scope="session")
def piper() -> PiperTTS:
    engine = get_tts()
    assert isinstance(engine, PiperTTS), "run the engine tests with VOICE_TTS=local"
    return engine
