"""What the caller hears of a tool call: the result as a sentence, or an apology.

The result is rendered deterministically rather than by a second model
generation: the embedded model (SmolLM2-135M) paraphrases JSON poorly and
sometimes invents values, a second generation would add its latency to a
turn that already waited for the tool, and an operator can make the spoken
line exactly what they want by answering ``{"say": "..."}``. A server model
(Ollama) would do better, but one behaviour for every engine keeps calls
predictable and testable.
"""

import json
from typing import Any

# Fields an operator's answer may use for the line to speak, in this order.
SPOKEN_FIELDS = ("say", "message", "text", "result", "answer", "status")
MAX_SPOKEN_CHARS = 300
MAX_FIELDS = 4
DONE_LINE = "Done."

FAILURE_LINES: dict[str, str] = {
    "timeout": "Sorry, that system is taking too long to answer. Can I help with anything else?",
    "bad_arguments": "Sorry, I missed some details I need for that. Could you say them again?",
    "already_called": "I've already sent that request.",
}
DEFAULT_FAILURE_LINE = "Sorry, I couldn't complete that request. Can I help with anything else?"


def failure_line(code: str) -> str:
    return FAILURE_LINES.get(code, DEFAULT_FAILURE_LINE)


def result_line(body: str) -> str:
    """A short sentence from the tool's answer (JSON or plain text)."""
    try:
        value: Any = json.loads(body)
    except ValueError:
        value = body
    return _cut(_render(value)) or DONE_LINE


def _render(value: Any) -> str:
    if isinstance(value, dict):
        for field in SPOKEN_FIELDS:
            if isinstance(value.get(field), str | int | float) and str(value[field]).strip():
                return str(value[field])
        pairs = [
            f"{str(k).replace('_', ' ')} is {v}"
            for k, v in value.items()
            if isinstance(v, str | int | float) and not isinstance(v, bool)
        ][:MAX_FIELDS]
        line = ", ".join(pairs)
        return f"{line[:1].upper()}{line[1:]}." if pairs else ""
    if isinstance(value, list):
        return ", ".join(filter(None, map(_render, value[:MAX_FIELDS])))
    if value is None or isinstance(value, bool):
        return ""
    return str(value)


def _cut(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= MAX_SPOKEN_CHARS:
        return text
    cut = text.rfind(" ", 0, MAX_SPOKEN_CHARS)
    return text[: cut if cut > 0 else MAX_SPOKEN_CHARS] + "…"
