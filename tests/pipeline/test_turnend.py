"""The rule on the words that ends a turn early or waits longer (calls.turnend)."""

import pytest

from calls.turnend import ends_thought


@pytest.mark.parametrize(
    "text",
    [
        "What time does the library open on Saturday?",
        "Book a table for two.",
        "Thanks, goodbye!",
        "That's all I needed.",
        'He said "yes."',
        "Hi, nice to talk to you.",
        "Yes, I can.",
        "Tell me more.",
        "Where are you from?",
    ],
)
def test_complete_thoughts(text):
    assert ends_thought(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a table for",
        "I'd like to book a table for.",  # Whisper's full stop on a broken-off phrase
        "My number is, um.",
        "Can you tell me about the",
        "So I was wondering if",
        "and then...",
        "Well,",
        "One moment -",
    ],
)
def test_words_that_trail_off(text):
    assert ends_thought(text) is False


@pytest.mark.parametrize(
    "text", ["", "   ", "...", "?", "blue socks and the red hat", "Are you open on holidays"]
)
def test_no_words_or_no_punctuation_leave_it_to_the_silence(text):
    assert ends_thought(text) is None
