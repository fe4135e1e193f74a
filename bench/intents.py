"""A small labelled set of caller utterances for the default intents (bench only):
the first four of each intent's built-in references (``workers.engines.references``)."""

from workers.engines.references import REFERENCES

LABELLED: list[tuple[str, str]] = [
    (text, intent) for intent, texts in REFERENCES.items() for text in texts[:4]
]
