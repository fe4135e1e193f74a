"""Caller utterances for the built-in intent names: what the embedding classifier
(``workers.engines.intent_embedding``) compares a caller's words with.

These are the tuning split of ``bench/quality.py`` (``--split tune``), written
before its held-out ``EVAL`` split and disjoint from it: the first four of each
intent are ``bench/intents.py``. An agent's own examples for an intent
(``Agent.examples``) replace these.
"""

REFERENCES: dict[str, tuple[str, ...]] = {
    "greeting": (
        "hi, how are you doing today?",
        "hello!",
        "hey there, good evening",
        "good afternoon",
        "hey, how are you",
        "good morning",
        "hello, my name is John",
        "hi there, thanks for picking up",
        "hi",
        "hello again",
    ),
    "question": (
        "what are your opening hours?",
        "how long does delivery take?",
        "do you have vegetarian options?",
        "where is your nearest store?",
        "what's your phone number?",
        "is the museum free on Sundays?",
        "how do I get to the airport?",
        "does the hotel have a pool?",
        "what size is the medium box?",
        "when will my package arrive?",
    ),
    "command": (
        "please cancel my subscription",
        "send me the invoice by email",
        "book me a room for friday",
        "turn off the notifications",
        "call me back in an hour",
        "book two tickets for the concert",
        "delete my account",
        "set an alarm for six",
        "order more printer paper",
        "send a message to my wife",
    ),
    "farewell": (
        "goodbye, thanks, bye",
        "that's everything, see you later",
        "thank you, have a nice day, bye",
        "ok bye",
        "bye",
        "thanks for your help, bye",
        "good night, talk soon",
        "I'm done, thank you",
        "see ya",
        "all good, goodbye then",
    ),
    "clarification": (
        "sorry, I didn't catch that",
        "what do you mean by that?",
        "could you say that again more slowly?",
        "I don't understand",
        "what?",
        "sorry, can you say it again?",
        "I don't follow",
        "could you slow down a bit?",
        "what does that word mean?",
        "sorry, was that a yes or a no?",
    ),
    "other": (
        "my dog likes to sleep all day",
        "bananas are yellow",
        "the football match was boring yesterday",
        "purple elephant keyboard",
        "my favourite colour is green",
        "the train was late again",
        "I'm sitting in the park",
        "hmm, okay",
        "pizza is better than pasta",
        "we painted the kitchen last week",
    ),
}
