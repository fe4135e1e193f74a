"""Shaping the responder's streamed tokens into speakable deltas and sentences."""

from workers.respond import MAX_SENTENCE_CHARS, SentenceStream, speakable
from workers.tts import split_sentences


def stream(tokens: list[str]) -> tuple[str, list[str]]:
    """Feed ``tokens`` one by one; the joined deltas and every sentence released."""
    shaper = SentenceStream()
    deltas, sentences = [], []
    for token in tokens:
        delta, done = shaper.feed(token)
        deltas.append(delta)
        sentences += done
    delta, done = shaper.close()
    return "".join(deltas) + delta, sentences + done


def test_sentences_are_released_as_soon_as_they_are_complete() -> None:
    shaper = SentenceStream()
    assert shaper.feed("We open") == ("We ", [])
    assert shaper.feed(" at nine.") == ("open at ", [])
    assert shaper.feed(" See") == ("nine. ", ["We open at nine."])
    assert shaper.close() == ("See", ["See"])


def test_the_first_sentence_is_spoken_from_its_first_clause_on() -> None:
    tokens = [
        "We",
        " open",
        " at",
        " nine",
        " on",
        " Saturdays,",
        " and",
        " close",
        " at",
        " five.",
    ]
    shaper = SentenceStream()
    released = [shaper.feed(token)[1] for token in tokens]
    # The first clause goes to speech as soon as the word after its comma starts.
    assert released[6] == ["We open at nine on Saturdays,"]
    assert shaper.close()[1] == ["and close at five."]
    # Later sentences stay whole; a short opener is not spoken on its own.
    assert stream(["Yes, we do.", " After six, we close the kitchen, sorry."])[1] == [
        "Yes, we do.",
        "After six, we close the kitchen, sorry.",
    ]
    assert stream(["Sure, thanks, we open at nine."])[1] == ["Sure, thanks, we open at nine."]


def test_markdown_and_list_markers_never_reach_the_caller() -> None:
    tokens = ["**Sure", "!** Here", " are", " options:\n", "- ", "Pasta", ".\n", "1", ". Soup", "."]
    shown, sentences = stream(tokens)
    assert shown == "Sure! Here are options: Pasta. Soup."
    assert sentences == ["Sure!", "Here are options: Pasta.", "Soup."]
    assert speakable("# Title\n`code` and _this_") == "Title code and this"


def test_a_run_on_reply_is_cut_at_a_word_so_speech_can_start() -> None:
    words = ["word "] * 100
    shown, sentences = stream(words)
    assert len(sentences) >= 2
    assert all(len(s) <= MAX_SENTENCE_CHARS for s in sentences)
    assert " ".join(sentences) == shown.strip()


def test_greeting_is_split_into_sentences() -> None:
    assert split_sentences("Hi there! How can I help? ") == ["Hi there!", "How can I help?"]
