"""The local intent classifier: the caller's words against each intent's examples,
compared as sentence embeddings (``workers.engines.sentence_encoder``).

Consumes the caller's text, the agent's intents and its examples; produces one
intent name. Each intent is the mean embedding (centroid) of its reference
utterances: the agent's examples for it, else the built-in ones for a built-in
name (``workers.engines.prompts.EXAMPLES`` and ``references.REFERENCES``),
else its description, else its name. The nearest centroid wins, nudged by
whether the caller asks (:data:`QUESTION_WEIGHT`, :func:`asks`).

Measured against SmolLM2-135M scoring the labels after a few-shot prompt
(``LlamaCppLLM.classify``, ``CLASSIFIER_LOCAL=llm``), docs/engines.md: on
``bench/quality.py``'s blind test split 0.88 typed and 0.76 spoken where SmolLM2
had 0.76 and 0.58, and 7 ms a call instead of 60-200 ms, with no second model
competing with the responder for the box's two cores. The centroid beat the nearest single
example and the mean of the nearest few (leave-one-out on the tuning split's first 60:
0.92 against 0.82–0.83): a caller's words are rarely close to one example,
but close to what an intent's examples share.
"""

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from workers.engines.prompts import EXAMPLES, intent_names
from workers.engines.references import REFERENCES
from workers.engines.sentence_encoder import SentenceEncoder

# Agents whose centroids are kept per process; one is a few KB.
MAX_CACHED_AGENTS = 64
# Reference texts whose embeddings are kept per process.
MAX_CACHED_TEXTS = 4096
# Everything but letters, digits, apostrophes and "?" is dropped before
# encoding: Whisper's full stops and exclamation marks moved the embeddings
# enough to flip intents ("The kids are watching cartoons." read as a
# command), while a question mark is what tells a question from a statement.
# Leave-one-out on the tuning split: 0.90 as typed, 0.92 normalized this way.
NOT_WORDS = re.compile(r"[^\w\s'?]")
# Beside the meaning, whether the caller asks: each intent gains this much
# times the share of its references that agree with the text on ending in
# "?". Words such as "thanks" pulled a follow-up question ("Thanks. And what
# about tomorrow?") to the farewell, which ends the call; with 0.2 questions
# stay questions, at the cost of one tuning text (0.917 -> 0.900 left out)
# and one held-out typed text (0.939 -> 0.924).
QUESTION_WEIGHT = 0.2

# Whisper often ends a spoken question with a full stop ("which payment
# methods do you accept."), so a text also asks when it opens, after a filler
# or two, with a question word or an inverted auxiliary. The same test is put
# to the references, so an intent's share of asking references counts these
# openings too ("could you say that again more slowly?" for clarification).
# On bench/quality.py's development split this won one spoken text back and
# lost none.
ASKING = re.compile(
    r"^(?:(?:so|and|but|um|uh|sorry|okay|ok|oh|well|also)\s+)*"
    r"(?:what|what's|which|who|whose|when|where|why|how|is|are|was|were|do|does|did"
    r"|can|could|would|will|should|may|have|has|am)\b"
)

Examples = Mapping[str, Sequence[str]]


def asks(words: str) -> bool:
    """Whether normalized ``words`` ask: a final "?" or a question's opening."""
    return words.endswith("?") or bool(ASKING.match(words))


def normalized(text: str) -> str:
    return " ".join(NOT_WORDS.sub(" ", text.lower()).split())


def built_in_references(name: str) -> tuple[str, ...]:
    """The built-in utterances for an intent name (none for an agent's own name)."""
    return (*EXAMPLES.get(name, ()), *REFERENCES.get(name, ()))


def references(intent: Mapping[str, str], examples: Examples | None) -> list[str]:
    """The utterances that stand for ``intent``, normalized and distinct."""
    name = intent["name"]
    given: Sequence[str] = built_in_references(name)
    if examples and examples.get(name):
        given = examples[name]
    elif not given:
        given = [intent.get("description") or name.replace("_", " ")]
    found = (normalized(text) for text in given)
    return list(dict.fromkeys(text for text in found if text)) or [name]


@dataclass(frozen=True)
class Centroids:
    """One agent's intents as the classifier compares them."""

    names: list[str]
    unit: np.ndarray  # one unit-length centroid per name
    asking: np.ndarray  # per name, the share of its references that end in "?"


class EmbeddingClassifier:
    provider = "local"

    def __init__(self, encoder: SentenceEncoder) -> None:
        self._encoder = encoder
        self._embed = lru_cache(maxsize=MAX_CACHED_TEXTS)(encoder.embed)
        self._centroids: OrderedDict[tuple, Centroids] = OrderedDict()

    def classify(
        self,
        text: str,
        intents: Sequence[dict[str, str]],
        model: str,
        temperature: float,
        *,
        examples: Examples | None = None,
    ) -> str:
        """The intent whose examples' centroid is nearest to ``text`` (and agrees on asking).

        ``model`` and ``temperature`` name an LLM classifier's settings; they
        mean nothing to an embedding and are ignored.
        """
        known = self._agent_centroids(intents, examples)
        words = normalized(text)
        asking = known.asking if asks(words) else 1 - known.asking
        scores = known.unit @ self._encoder.embed(words) + QUESTION_WEIGHT * asking
        return known.names[int(np.argmax(scores))]

    def _agent_centroids(
        self, intents: Sequence[dict[str, str]], examples: Examples | None
    ) -> Centroids:
        names = intent_names(intents, "llm", self.provider)
        by_name: dict[str, dict[str, str]] = {}
        for intent in intents:
            by_name.setdefault(str(intent.get("name", "")).strip(), intent)
        # Keyed by what the references are made of: a hit costs no normalizing.
        key = tuple(
            (n, by_name[n].get("description"), tuple((examples or {}).get(n) or ())) for n in names
        )
        if key not in self._centroids:
            refs = [references({**by_name[n], "name": n}, examples) for n in names]
            rows = [np.mean([self._embed(t) for t in r], axis=0) for r in refs]
            self._centroids[key] = Centroids(
                names=names,
                unit=np.array([row / np.linalg.norm(row) for row in rows]),
                asking=np.array([np.mean([asks(t) for t in r]) for r in refs]),
            )
            if len(self._centroids) > MAX_CACHED_AGENTS:
                self._centroids.popitem(last=False)
        self._centroids.move_to_end(key)
        return self._centroids[key]
