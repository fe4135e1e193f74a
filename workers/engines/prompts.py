"""Prompts shared by the LLM engines: intent classification, and the
knowledge passages an answer may draw on (:func:`knowledge_prompt`).

A plain few-shot completion prompt ("Message: … / Intent: …") suits small
models better than a chat-formatted instruction: measured on bench/intents.py
with SmolLM2-135M it is right 3 times in 4 (with calibration, see
``llamacpp_llm``) against under half for the chat form. Each built-in intent
name comes with two example utterances; an agent's own intents are described
by their description. Examples alternate between intents so no label gains
from being the most recent one.
"""

from collections.abc import Sequence

from workers.engines.base import EngineError

EXAMPLES: dict[str, tuple[str, str]] = {
    "greeting": ("hello there", "good morning, hi"),
    "question": ("what time do you open tomorrow?", "how much does the premium plan cost?"),
    "command": ("book a table for two at seven", "cancel my order please"),
    "farewell": ("that's all, goodbye", "thanks, bye now"),
    "clarification": ("sorry, what did you mean?", "can you repeat that?"),
    "other": ("the weather is nice", "my cat is asleep on the sofa"),
}
# Intent is decided by the start of an utterance; the cap keeps the prompt
# well inside a small context window whatever the caller sends.
MAX_TEXT_CHARS = 1000


def intent_names(intents: Sequence[dict[str, str]], stage: str, provider: str) -> list[str]:
    """The distinct, non-empty intent names, in the agent's order."""
    names = [str(i.get("name", "")).strip() for i in intents]
    names = [n for n in dict.fromkeys(names) if n]
    if not names:
        raise EngineError(stage, provider, "failed", "The agent has no intents to classify into.")
    return names


def classification_prompt(text: str, intents: Sequence[dict[str, str]]) -> str:
    """The few-shot prompt ending in ``Intent:``; the label follows after a space."""
    described = ", ".join(
        f"{i['name']} ({i['description']})" if i.get("description") else i["name"] for i in intents
    )
    lines = [f"Label each message with its intent: {described}.", ""]
    for k in range(2):
        for intent in intents:
            if intent["name"] in EXAMPLES:
                lines += [
                    f"Message: {EXAMPLES[intent['name']][k]}",
                    f"Intent: {intent['name']}",
                    "",
                ]
    message = " ".join(text.split())[:MAX_TEXT_CHARS] or "(silence)"
    lines += [f"Message: {message}", "Intent:"]
    return "\n".join(lines)


def knowledge_prompt(passages: Sequence[str]) -> str:
    """The system-prompt section that gives the responder the agent's knowledge."""
    facts = "\n".join(f"- {' '.join(p.split())}" for p in passages)
    return (
        "Use these facts from the agent's knowledge when they answer the caller; "
        "never contradict them, and say you don't know rather than invent details:\n"
        f"{facts}"
    )
