"""Prompts shared by the LLM engines: intent classification, tool choice,
and the knowledge passages an answer may draw on (:func:`knowledge_prompt`).

A plain few-shot completion prompt ("Message: … / Intent: …") suits small
models better than a chat-formatted instruction: measured on bench/intents.py
with SmolLM2-135M it is right 3 times in 4 (with calibration, see
``llamacpp_llm``) against under half for the chat form. An intent's examples
are the agent's own (``Agent.examples``) or, for a built-in intent name
without them, the two below; an intent is also described by its description.
Examples alternate between intents so no label gains from being the most
recent one. Four built-in examples per intent instead of two scored worse on
the tuning split of ``bench/quality.py`` (43 against 46 of 60), so two stay.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from workers.engines.base import EngineError, ToolSpec

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


Examples = Mapping[str, Sequence[str]]


def intent_examples(
    intents: Sequence[dict[str, str]], examples: Examples | None
) -> dict[str, list[str]]:
    """Each intent's few-shot examples: the agent's own, else the built-in ones for its name."""
    shots: dict[str, list[str]] = {}
    for intent in intents:
        given: Sequence[str] = EXAMPLES.get(intent["name"], ())
        if examples and examples.get(intent["name"]):
            given = examples[intent["name"]]
        shots[intent["name"]] = [" ".join(e.split()) for e in given]
    return shots


def classification_prompt(
    text: str,
    intents: Sequence[dict[str, str]],
    examples: Examples | None = None,
    rounds: int | None = None,
) -> str:
    """The few-shot prompt ending in ``Intent:``; the label follows after a space.

    ``examples`` are the agent's (``intent_examples`` fills in the built-in
    ones); ``rounds`` caps how many examples per intent are shown, for a model
    whose context cannot hold them all.
    """
    described = ", ".join(
        f"{i['name']} ({i['description']})" if i.get("description") else i["name"] for i in intents
    )
    lines = [f"Label each message with its intent: {described}.", ""]
    shots = intent_examples(intents, examples)
    most = max(map(len, shots.values()), default=0)
    for k in range(most if rounds is None else min(rounds, most)):
        for intent in intents:
            if k < len(shots[intent["name"]]):
                lines += [f"Message: {shots[intent['name']][k]}", f"Intent: {intent['name']}", ""]
    message = " ".join(text.split())[:MAX_TEXT_CHARS] or "(silence)"
    lines += [f"Message: {message}", "Intent:"]
    return "\n".join(lines)


NO_TOOL = "none"


def tool_choice_prompt(tools: Sequence[ToolSpec]) -> str:
    """The system prompt of a constrained tool choice: the tools, the answer's form."""
    lines = ["Decide whether the caller's last message needs one of these tools:"]
    for tool in tools:
        lines.append(f"- {tool['name']}: {tool['description']}")
    lines += [
        "",
        f'Answer with JSON only: {{"tool": "<name>"}} to call a tool, or {{"tool": "{NO_TOOL}"}} '
        "when no tool fits.",
    ]
    return "\n".join(lines)


def tool_choice_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """A JSON Schema admitting one tool name, or none."""
    names = [tool["name"] for tool in tools]
    return {
        "type": "object",
        "properties": {"tool": {"type": "string", "enum": [*names, NO_TOOL]}},
        "required": ["tool"],
        "additionalProperties": False,
    }


def tool_arguments_prompt(tool: ToolSpec) -> str:
    """The system prompt asking for ``tool``'s arguments (its schema constrains the answer)."""
    return (
        f"Fill in the arguments of the tool {tool['name']} ({tool['description']}) "
        "from the caller's words. Answer with JSON only."
    )


def knowledge_prompt(passages: Sequence[str]) -> str:
    """The system-prompt section that gives the responder the agent's knowledge."""
    facts = "\n".join(f"- {' '.join(p.split())}" for p in passages)
    return (
        "Use these facts from the agent's knowledge when they answer the caller; "
        "never contradict them, and say you don't know rather than invent details:\n"
        f"{facts}"
    )
