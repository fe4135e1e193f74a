"""The local intent classifier for real: MiniLM embeddings run on NumPy, the
caller's words against each intent's examples."""

import json
from pathlib import Path

import numpy as np
import pytest

from agents.models import DEFAULT_INTENTS
from workers.engines.base import EngineError
from workers.engines.intent_embedding import EmbeddingClassifier, normalized
from workers.engines.models import minilm_dir
from workers.engines.sentence_encoder import SentenceEncoder

NAMES = {i["name"] for i in DEFAULT_INTENTS}
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "minilm_reference.json"


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(minilm_dir())


def test_embeddings_match_sentence_transformers(encoder: SentenceEncoder) -> None:
    """The NumPy forward pass gives the vectors sentence-transformers gives
    (made once with it and PyTorch, tests/data/minilm_reference.json)."""
    reference = json.loads(REFERENCE.read_text())["embeddings"]
    for text, vector in reference.items():
        assert float(encoder.embed(text) @ np.array(vector)) > 0.9999, text


def test_alike_meanings_are_nearer_than_unlike_ones(encoder: SentenceEncoder) -> None:
    goodbye = encoder.embed("thanks, goodbye")
    assert goodbye @ encoder.embed("bye, talk to you later") > goodbye @ encoder.embed(
        "how much does the premium plan cost?"
    )


def test_a_missing_model_is_an_engine_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as err:
        SentenceEncoder(tmp_path)
    assert err.value.code == "unknown_model"


def test_punctuation_but_the_question_mark_is_dropped() -> None:
    assert normalized("  The kids are watching cartoons.  ") == "the kids are watching cartoons"
    assert normalized("Cheers! Have a good one!") == "cheers have a good one"
    assert normalized("Did you say Tuesday?") == "did you say tuesday?"


@pytest.mark.parametrize(
    "text",
    ["Which days do you deliver.", "Is there parking nearby.", "Do you sell gift cards."],
)
def test_a_question_transcribed_with_a_full_stop_is_a_question(
    embedding: EmbeddingClassifier, text: str
) -> None:
    """Whisper often hears a question without its "?"; its opening still asks."""
    assert embedding.classify(text, DEFAULT_INTENTS, "", 0.0) == "question"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Hey, good afternoon to you.", "greeting"),
        ("What's the cheapest flight to Rome?", "question"),
        ("Cancel my appointment on Friday.", "command"),
        ("Alright, thanks, goodbye!", "farewell"),
        ("Sorry, could you repeat that?", "clarification"),
        ("My cat sleeps on the windowsill.", "other"),
    ],
)
def test_the_built_in_intents(embedding: EmbeddingClassifier, text: str, intent: str) -> None:
    assert embedding.classify(text, DEFAULT_INTENTS, "qwen2.5:1.5b", 0.3) == intent


@pytest.mark.parametrize("text", ["", "   ", "🙂🙂🙂", "blah " * 3000, "我想预订明天晚上的桌子"])
def test_any_text_gets_one_of_the_intents(embedding: EmbeddingClassifier, text: str) -> None:
    assert embedding.classify(text, DEFAULT_INTENTS, "any", 0.0) in NAMES


def test_examples_steer_the_classifier(embedding: EmbeddingClassifier) -> None:
    """An agent's examples are what a caller notices: the same words now reach sales."""
    intents = [{"name": "sales"}, {"name": "support"}]
    examples = {
        "sales": ["I want to buy the new phone", "how much is the upgrade"],
        "support": ["my router keeps dropping the connection", "the app crashes when I log in"],
    }
    text = "I'd like to order two more licences"
    steered = embedding.classify(text, intents, "any", 0.0, examples=examples)
    assert steered == "sales"
    swapped = {"sales": examples["support"], "support": examples["sales"]}
    assert embedding.classify(text, intents, "any", 0.0, examples=swapped) == "support"


def test_an_intent_without_examples_is_its_description(embedding: EmbeddingClassifier) -> None:
    intents = [
        {"name": "billing", "description": "invoices, payments, refunds, charges on my card"},
        {"name": "shipping", "description": "deliveries, parcels, tracking a package"},
    ]
    assert embedding.classify("where is my parcel?", intents, "any", 0.0) == "shipping"
    assert embedding.classify("you charged me twice", intents, "any", 0.0) == "billing"


def test_an_intent_without_examples_or_description_is_its_name(
    embedding: EmbeddingClassifier,
) -> None:
    intents = [{"name": "opening_hours"}, {"name": "table_booking"}]
    assert embedding.classify("when do you open?", intents, "any", 0.0) == "opening_hours"
    assert embedding.classify("a table for two, please", intents, "any", 0.0) == "table_booking"


def test_without_intents_is_an_engine_error(embedding: EmbeddingClassifier) -> None:
    with pytest.raises(EngineError) as err:
        embedding.classify("hello", [], "any", 0.0)
    assert err.value.code == "failed"
