"""Whether the caller's words so far end a thought: the rule on the words that
shortens or lengthens the endpointer's silence (``Endpointer.words_heard``).

Consumes the early transcript of a pause (``workers.stt.transcribe_early``);
produces True (a complete thought: the turn can end now), False (it trails
off: wait longer) or None (no words, or no sign either way: the silence
alone decides).
"""

import re

# Words no sentence ends on, whatever Whisper's punctuation: articles,
# possessives, conjunctions, fillers. Pronouns, auxiliaries and adverbs are
# not among them: "nice to talk to you", "yes, I can" and "tell me more" are
# complete.
DANGLING = frozenset(
    """
    a an the my your our their and or nor but because if um uh er erm very
    i'm we're you're they're let's
    """.split()  # noqa: SIM905 (a word list reads best as text)
)
# Prepositions end questions ("where are you from?"), but after a full stop
# they are a phrase Whisper closed too soon ("a table for.").
PREPOSITIONS = frozenset(
    """
    to of for from with without at by into onto about like as than
    """.split()  # noqa: SIM905
)
SENTENCE_END = re.compile(r"[.?!]['\")\]]*$")
WORD = re.compile(r"[a-z']+")


def ends_thought(text: str) -> bool | None:
    """True when ``text`` reads as a complete thought, False when it trails off,
    None when it says neither."""
    stripped = text.strip()
    found = WORD.findall(stripped.lower())
    if not found:
        return None
    last = found[-1]
    question = stripped.rstrip("'\")]").endswith("?")
    if stripped.endswith(("...", "…", "-", "—", ",")) or last in DANGLING:
        return False
    if last in PREPOSITIONS and not question:
        return False
    # Unpunctuated words are as likely Whisper's omission as a broken-off phrase.
    return True if SENTENCE_END.search(stripped) else None
