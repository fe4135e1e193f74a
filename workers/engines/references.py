"""Caller utterances for the built-in intent names: what the embedding classifier
(``workers.engines.intent_embedding``) compares a caller's words with.

These are the tuning split of ``bench/quality.py`` (``--split tune``): the first
ten of each intent were written before its ``dev`` split and are disjoint from
it (the first four are ``bench/intents.py``); the next were written from the
dev split's errors (repairs such as "pardon?", fillers, a farewell without
"bye"). The last six commands and twelve others come from the ``test2``
split's errors, as kinds of utterance rather than its texts: a request put as
a question ("could you ..."), and what a caller says in answer to the agent
(a number, a name, a date, a yes or no), which was read as a command. The
blind ``test3`` split kept them: typed 0.869 without, 0.940 with
(``bench/spoken_set.py``). An agent's own examples for an intent
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
        "could you cancel my booking for tomorrow?",
        "can you send me a copy of the bill?",
        "I'd like to change my delivery address",
        "I need you to update my phone number",
        "would you put me through to a nurse?",
        "I want to make an appointment",
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
        "take care, cheers",
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
        "pardon?",
        "sorry, I missed that",
        "can you repeat the last part?",
        "one more time, please",
        "I didn't hear you, the line cut out",
        "hold on, you lost me there",
        "did you say fifteen or fifty?",
        "what was that again?",
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
        "uh, well, you know",
        "so yeah, whatever",
        "my order number is one two three four five",
        "it's under the name Sarah Jones",
        "yes, that's right",
        "no, it was the other one",
        "my postcode is S W one four A B",
        "I called yesterday about this",
        "the booking is for next Thursday",
        "it's the red car, a Toyota",
        "I've had the problem since Monday",
        "my date of birth is the third of May",
        "it was delivered to my neighbour",
        "I'm calling from my work phone",
    ),
}
