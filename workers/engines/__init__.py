"""Engine factory: one cached engine per stage and process.

``VOICE_STT`` / ``VOICE_LLM`` / ``VOICE_TTS`` pick the provider ("local" is the
offline default; "deepgram", "ollama", "cartesia" are the cloud/server ones;
"instant", for every stage, is a benchmark instrument chosen only explicitly).
Models load on first use and stay loaded for the life of the worker process.
"""

from functools import cache
from pathlib import Path

from django.conf import settings

from workers.engines.base import (
    EngineError,
    IntentClassifier,
    LanguageModel,
    SpeechToText,
    TextToSpeech,
    Transcript,
)

__all__ = [
    "EngineError",
    "IntentClassifier",
    "LanguageModel",
    "SpeechToText",
    "TextToSpeech",
    "Transcript",
    "get_classifier",
    "get_llm",
    "get_stt",
    "get_tts",
    "reset_engines",
]


def _unknown(stage: str, provider: str, choices: str) -> EngineError:
    return EngineError(
        stage, provider, "failed", f"Unknown provider {provider!r}; choose one of {choices}."
    )


@cache
def get_stt() -> SpeechToText:
    provider = settings.VOICE_STT
    if provider == "local":
        from workers.engines.models import whisper_model_dir
        from workers.engines.whisper_stt import WhisperSTT

        return WhisperSTT(
            settings.STT_MODEL or str(whisper_model_dir()),
            settings.ENGINE_THREADS,
            beam_size=settings.STT_BEAM_SIZE,
            use_hints=settings.STT_LOCAL_HINTS,
            window_s=settings.STT_LOCAL_WINDOW_S,
        )
    if provider == "deepgram":
        from workers.engines.deepgram_stt import DeepgramSTT

        return DeepgramSTT(
            settings.DEEPGRAM_API_KEY,
            settings.DEEPGRAM_BASE_URL,
            settings.ENGINE_TIMEOUT_S,
            model=settings.DEEPGRAM_MODEL,
        )
    if provider == "instant":
        from workers.engines.instant import InstantSTT

        return InstantSTT(settings.REDIS_URL, settings.ENGINE_TIMEOUT_S)
    raise _unknown("stt", provider, "local, deepgram, instant")


@cache
def get_llm() -> LanguageModel:
    provider = settings.VOICE_LLM
    if provider == "local":
        from workers.engines.llamacpp_llm import LlamaCppLLM
        from workers.engines.models import smollm2_gguf

        path = Path(settings.LLM_MODEL_PATH) if settings.LLM_MODEL_PATH else smollm2_gguf()
        return LlamaCppLLM(path, settings.LLM_THREADS, repeat_penalty=settings.LLM_REPEAT_PENALTY)
    if provider == "ollama":
        from workers.engines.ollama_llm import OllamaLLM

        return OllamaLLM(
            settings.OLLAMA_HOST,
            settings.OLLAMA_KEEP_ALIVE,
            settings.ENGINE_TIMEOUT_S,
            api_key=settings.OLLAMA_API_KEY,
        )
    if provider == "instant":
        from workers.engines.instant import InstantLLM

        return InstantLLM(settings.INSTANT_TOKEN_MS / 1000)
    raise _unknown("llm", provider, "local, ollama, instant")


@cache
def get_classifier() -> IntentClassifier:
    """What labels the caller's intent: the LLM engine's own ``classify``, or
    for the local engine the embedding classifier (``CLASSIFIER_LOCAL``)."""
    if settings.VOICE_LLM == "local" and settings.CLASSIFIER_LOCAL == "embedding":
        from workers.engines.intent_embedding import EmbeddingClassifier
        from workers.engines.models import minilm_dir
        from workers.engines.sentence_encoder import SentenceEncoder

        return EmbeddingClassifier(SentenceEncoder(minilm_dir()))
    return get_llm()


@cache
def get_tts() -> TextToSpeech:
    provider = settings.VOICE_TTS
    if provider == "local":
        from workers.engines.models import piper_voice_dir
        from workers.engines.piper_tts import PiperTTS

        folders = [Path(settings.TTS_VOICE_DIR)] if settings.TTS_VOICE_DIR else []
        return PiperTTS([*folders, piper_voice_dir()])
    if provider == "cartesia":
        from workers.engines.cartesia_tts import CartesiaTTS

        return CartesiaTTS(
            settings.CARTESIA_API_KEY,
            settings.CARTESIA_BASE_URL,
            settings.ENGINE_TIMEOUT_S,
            default_voice=settings.CARTESIA_VOICE_ID,
            model=settings.CARTESIA_MODEL,
        )
    if provider == "instant":
        from workers.engines.instant import InstantTTS

        return InstantTTS()
    raise _unknown("tts", provider, "local, cartesia, instant")


def reset_engines() -> None:
    """Forget the cached engines (tests and ``engines check`` after a settings change)."""
    for factory in (get_stt, get_llm, get_classifier, get_tts):
        factory.cache_clear()
