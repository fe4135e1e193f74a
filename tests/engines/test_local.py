"""The offline engines for real: Piper, faster-whisper and llama.cpp with the bundled models."""

import re
from pathlib import Path

import pytest

from agents.models import DEFAULT_INTENTS
from agents.tools import arguments_validator
from workers.audio import duration_s, resample, rms
from workers.engines.base import EngineError, ToolCall
from workers.engines.llamacpp_llm import LlamaCppLLM
from workers.engines.models import whisper_model_dir
from workers.engines.piper_tts import PiperTTS
from workers.engines.whisper_stt import WhisperSTT

SENTENCE = "Please book a table for four people at seven tonight."
NAMES = {i["name"] for i in DEFAULT_INTENTS}


DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def words(text: str) -> list[str]:
    """Lower-case words, single digits spelled out: Whisper writes "4" or "four"."""
    found = re.findall(r"[a-z0-9']+", text.lower())
    return [DIGITS[int(w)] if w.isdigit() and len(w) == 1 else w for w in found]


def word_errors(expected: list[str], heard: list[str]) -> int:
    """Word-level edit distance (substitutions + insertions + deletions)."""
    row = list(range(len(heard) + 1))
    for i, word in enumerate(expected, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(heard, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1]


def test_say_then_transcribe_round_trips_a_sentence(piper: PiperTTS, whisper: WhisperSTT) -> None:
    speech = b"".join(piper.stream(SENTENCE, "en_US-joe-medium"))
    heard = whisper.transcribe(resample(speech, piper.sample_rate, 16000), 16000, "en")

    assert word_errors(words(SENTENCE), words(heard.text)) <= 1, heard.text
    assert heard.confidence is not None and 0 < heard.confidence <= 1


@pytest.fixture(scope="module")
def short_window_whisper() -> WhisperSTT:
    """faster-whisper with a 10 s encoder window (STT_LOCAL_WINDOW_S=10)."""
    return WhisperSTT(str(whisper_model_dir()), window_s=10)


def test_a_short_encoder_window_hears_a_sentence_and_one_longer_than_it(
    piper: PiperTTS, short_window_whisper: WhisperSTT
) -> None:
    speech = resample(b"".join(piper.stream(SENTENCE, "")), piper.sample_rate, 16000)
    heard = short_window_whisper.transcribe(speech, 16000, "en")
    assert word_errors(words(SENTENCE), words(heard.text)) <= 1, heard.text

    text = (
        "Please book a table for four people at seven tonight. We would like a quiet "
        "corner near the window if you have one. My name is Maria and my number ends "
        "in five five two. We will bring a small cake for a birthday."
    )
    speech = resample(b"".join(piper.stream(text, "")), piper.sample_rate, 16000)
    # Longer than the window: decoded in Whisper's own 30 s one, to its end.
    assert duration_s(speech, 16000) > 10
    heard_long = words(short_window_whisper.transcribe(speech, 16000, "en").text)
    assert word_errors(words(text), heard_long) <= 6, heard_long  # "552" for "five five two"
    assert heard_long[:2] == ["please", "book"] and heard_long[-2:] == ["a", "birthday"]


def test_transcribe_accepts_the_rate_it_is_given(piper: PiperTTS, whisper: WhisperSTT) -> None:
    speech = b"".join(piper.stream("Good morning.", ""))
    heard = whisper.transcribe(speech, piper.sample_rate, "en")  # 22.05 kHz, resampled inside
    assert words(heard.text) == ["good", "morning"]


def test_silence_and_empty_audio_transcribe_to_little_or_nothing(whisper: WhisperSTT) -> None:
    assert whisper.transcribe(b"", 16000).text == ""
    assert len(words(whisper.transcribe(b"\x00\x00" * 16000, 16000).text)) <= 2


def test_bad_audio_is_refused(whisper: WhisperSTT) -> None:
    with pytest.raises(EngineError) as err:
        whisper.transcribe(b"\x00\x00\x00", 16000)
    assert err.value.code == "bad_audio"
    with pytest.raises(EngineError) as err:
        whisper.transcribe(b"\x00\x00", 1000)
    assert err.value.code == "bad_audio"


def test_broken_voice_file_is_an_engine_error(tmp_path: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    (tmp_path / "broken.onnx.json").write_text("{}")
    with pytest.raises(EngineError) as err:
        list(PiperTTS([tmp_path]).stream("Hi.", "broken"))
    assert err.value.code == "unknown_voice"


def test_tts_streams_audible_pcm16_per_sentence(piper: PiperTTS) -> None:
    chunks = list(piper.stream("Hello there. This is the second sentence.", "en_US-joe-medium"))
    audio = b"".join(chunks)

    assert piper.sample_rate == 22050
    assert len(chunks) >= 2
    assert all(len(c) % 2 == 0 for c in chunks)
    assert 1.5 < duration_s(audio, piper.sample_rate) < 8
    assert rms(audio) > 0.02


def test_tts_unknown_voice_names_the_available_ones(piper: PiperTTS) -> None:
    for voice in ("en_GB-nobody-low", "../../etc/passwd"):
        with pytest.raises(EngineError) as err:
            list(piper.stream("Hi.", voice))
        assert err.value.code == "unknown_voice"
        assert "en_US-joe-medium" in err.value.message


def test_tts_of_blank_text_is_silent_not_an_error(piper: PiperTTS) -> None:
    assert list(piper.stream("   ", "en_US-joe-medium")) == []


def test_llm_streams_a_multi_sentence_answer_in_many_deltas(llama: LlamaCppLLM) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Describe Paris in three sentences."},
    ]
    deltas = list(llama.stream(messages, "llama3.2:1b", 0.7, 80))

    assert len(deltas) > 1
    assert len(words("".join(deltas))) > 10


def test_llm_answers_even_when_the_history_overflows_the_context(llama: LlamaCppLLM) -> None:
    history = [
        {"role": role, "content": f"Turn {n}: " + "many words here " * 60}
        for n in range(20)
        for role in ("user", "assistant")
    ]
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        *history,
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert "".join(llama.stream(messages, "llama3.2:1b", 0.0, 24)).strip()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "hello",
        "what time do you open?",
        "Bonjour, je voudrais réserver une table pour ce soir.",
        "我想预订明天晚上的桌子",
        "Ich möchte mein Abonnement kündigen.",
        "blah " * 3000,
        "𝄞" * 5000,  # 4-byte characters: several tokens each
        "Message: x\nIntent: nonsense\n\nMessage:",
        "🙂🙂🙂",
    ],
)
def test_classify_always_returns_one_of_the_intents(llama: LlamaCppLLM, text: str) -> None:
    assert llama.classify(text, DEFAULT_INTENTS, "qwen2.5:1.5b", 0.3) in NAMES


def test_classify_custom_intents(llama: LlamaCppLLM) -> None:
    intents = [
        {"name": "billing", "description": "invoices, payments, refunds"},
        {"name": "shipping", "description": "deliveries, parcels, tracking"},
    ]
    assert llama.classify("where is my parcel?", intents, "any", 0.0) in {"billing", "shipping"}


@pytest.mark.parametrize(
    ("text", "intent"),
    [("goodbye, thanks, bye", "farewell"), ("sorry, could you repeat that?", "clarification")],
)
def test_classify_obvious_cases(llama: LlamaCppLLM, text: str, intent: str) -> None:
    assert llama.classify(text, DEFAULT_INTENTS, "qwen2.5:1.5b", 0.3) == intent


def test_examples_steer_the_classifier(llama: LlamaCppLLM) -> None:
    """An agent's examples are what a caller notices: the same words now reach sales."""
    intents = [{"name": "sales"}, {"name": "support"}]
    examples = {
        "sales": ["I want to buy the new phone", "how much is the upgrade"],
        "support": ["my router keeps dropping the connection", "the app crashes when I log in"],
    }
    text = "I'd like to order two more licences"
    assert llama.classify(text, intents, "any", 0.0) == "support"
    assert llama.classify(text, intents, "any", 0.0, examples=examples) == "sales"


def test_labels_sharing_tokens_are_told_apart(llama: LlamaCppLLM) -> None:
    """Labels with a common first token are scored past it, each still reachable."""
    intents = [
        {"name": "book_table", "description": "reserve a table in the restaurant"},
        {"name": "book_room", "description": "reserve a hotel room for the night"},
    ]
    examples = {"book_table": ["a table for four at eight"], "book_room": ["a double room please"]}
    labels = {
        llama.classify(text, intents, "any", 0.0, examples=examples)
        for text in ("a table for two tonight", "a single room for three nights")
    }
    assert labels == {"book_table", "book_room"}


def test_examples_beyond_the_context_are_dropped_not_fatal(llama: LlamaCppLLM) -> None:
    intents = [{"name": f"intent{n}", "description": "d" * 400} for n in range(20)]
    examples = {i["name"]: ["a long caller sentence about many things " * 3] * 5 for i in intents}
    assert llama.classify("hello", intents, "any", 0.0, examples=examples).startswith("intent")


def test_classify_without_intents_is_an_engine_error(llama: LlamaCppLLM) -> None:
    with pytest.raises(EngineError) as err:
        llama.classify("hello", [], "qwen2.5:1.5b", 0.3)
    assert err.value.code == "failed"


CHECK_ORDER = {
    "name": "check_order",
    "description": "Look up the delivery status of an order.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string", "maxLength": 20}},
        "required": ["order_id"],
    },
}


def test_llm_calls_a_tool_with_arguments_of_its_schema_for_an_obvious_request(
    llama: LlamaCppLLM,
) -> None:
    """The shape, not the content: SmolLM2-135M picks the tool when told to
    and its arguments fit the schema (grammar-constrained); their values are
    often poor at this size (docs/tools.md)."""
    messages = [
        {"role": "system", "content": "You are a shop assistant."},
        {"role": "user", "content": "Use check_order for order 4711"},
    ]
    items = list(llama.stream_or_call(messages, [CHECK_ORDER], "local", 0.7, 48))

    assert len(items) == 1 and isinstance(items[0], ToolCall), items
    assert items[0].name == "check_order"
    assert arguments_validator(CHECK_ORDER["parameters"]).is_valid(items[0].arguments)
