"""An agent's knowledge: passages of its entries and retrieval over them.

Consumes :class:`agents.models.KnowledgeEntry` rows (their stored passages).
Produces :func:`search`, the one retrieval entry point (the ``knowledge``
route, answers with knowledge in the prompt, the tools' ``lookup_knowledge``),
and :func:`best_sentences`, the grounded extract the ``knowledge`` route says.

Ranking is Okapi BM25 computed in Python over the agent's passages, not a
database's full-text engine: one code path gives the same results on the
embedded SQLite default and on PostgreSQL, needs no extension or model, and an
agent's knowledge is bounded (``KNOWLEDGE_ENTRIES_MAX`` entries of at most
``KNOWLEDGE_CONTENT_MAX`` characters), so scoring it per turn takes
milliseconds (tens at the limit: docs/agents.md). bench/knowledge.py
measures its recall.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

# A passage is about a spoken answer's worth of context: small enough that the
# best one is specific, big enough to hold a fact with its qualifiers.
PASSAGE_CHARS = 600
# BM25's usual constants: term-frequency saturation and length normalization.
K1 = 1.2
B = 0.75
# How much of the best passage the knowledge route says: a spoken answer.
EXTRACT_SENTENCES = 2

_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# Words that say nothing about which passage answers a question.
STOPWORDS = frozenset(
    """a about an and any are as at be been but by can could did do does for from had has
    have how i if in into is it its me my of on or our please so tell than that the their
    them then there these they this to us was we what when where which who why will with
    would you your""".split()  # noqa: SIM905  (a word list reads better as text)
)


@dataclass(frozen=True)
class Passage:
    """A retrieved passage: which entry it comes from, its text and its score."""

    entry_id: int
    title: str
    text: str
    score: float


def stem(word: str) -> str:
    """A light suffix strip so "opens", "opening" and "opened" meet "open"."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    """The indexable terms of ``text``: lower-case, stopwords dropped, stemmed."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def split_passages(content: str, size: int = PASSAGE_CHARS) -> list[str]:
    """``content`` cut into passages of about ``size`` characters, at sentence
    ends where possible; a paragraph break always starts a new passage."""
    passages: list[str] = []
    for paragraph in re.split(r"\n\s*\n", content):
        current = ""
        for sentence in _SENTENCE.split(" ".join(paragraph.split())):
            while len(sentence) > size:  # one run-on sentence: cut at a space
                cut = sentence.rfind(" ", 0, size)
                cut = cut if cut > 0 else size
                if current:
                    passages.append(current)
                    current = ""
                passages.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if current and len(current) + 1 + len(sentence) > size:
                passages.append(current)
                current = ""
            current = f"{current} {sentence}".strip()
        if current:
            passages.append(current)
    return [p for p in passages if p]


def index_terms(text: str) -> str:
    """``text``'s terms as stored with a passage: each between two spaces on
    either side, so counting ``" term "`` finds every occurrence (a C-speed
    ``str.count``; tokenizing every passage per turn was most of the cost)."""
    return "".join(f"  {term}  " for term in terms(text))


def rank_indexed(query: str, documents: Sequence[str]) -> list[tuple[int, float]]:
    """BM25 scores of documents given as :func:`index_terms` strings: (index,
    score), best first, only documents sharing a term with ``query``."""
    query_terms = set(terms(query))
    if not query_terms or not documents:
        return []
    n = len(documents)
    lengths = [doc.count("  ") // 2 for doc in documents]
    average = sum(lengths) / n or 1.0
    counts = {term: [doc.count(f" {term} ") for doc in documents] for term in query_terms}
    idf = {
        term: math.log(1 + (n - df + 0.5) / (df + 0.5))
        for term, column in counts.items()
        for df in [sum(1 for tf in column if tf)]
    }
    scores = []
    for index, length in enumerate(lengths):
        norm = K1 * (1 - B + B * length / average)
        score = sum(
            idf[term] * tf * (K1 + 1) / (tf + norm)
            for term, column in counts.items()
            if (tf := column[index])
        )
        if score > 0:
            scores.append((index, score))
    return sorted(scores, key=lambda pair: (-pair[1], pair[0]))


def rank(query: str, documents: Sequence[str]) -> list[tuple[int, float]]:
    """:func:`rank_indexed` of plain texts."""
    return rank_indexed(query, [index_terms(doc) for doc in documents])


def search(agent_id: int, query: str, k: int = 3) -> list[Passage]:
    """The agent's ``k`` passages that best match ``query``, best first; [] when none does."""
    from .models import KnowledgePassage  # here: the models import this module

    rows = list(
        KnowledgePassage.objects.filter(entry__agent_id=agent_id)
        .order_by("entry_id", "index")
        .values_list("entry_id", "entry__title", "text", "terms")
    )
    ranked = rank_indexed(query, [row[3] for row in rows])
    return [
        Passage(entry_id=rows[i][0], title=rows[i][1], text=rows[i][2], score=round(score, 4))
        for i, score in ranked[:k]
    ]


def best_sentences(passage: str, query: str, limit: int = EXTRACT_SENTENCES) -> str:
    """The ``limit`` sentences of ``passage`` that best match ``query``, in their
    order; the passage's opening sentences when none matches."""
    sentences = [s for s in _SENTENCE.split(passage.strip()) if s]
    chosen = sorted(i for i, _ in rank(query, sentences)[:limit]) or list(range(limit))
    return " ".join(sentences[i] for i in chosen if i < len(sentences))
