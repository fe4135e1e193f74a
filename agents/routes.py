"""Intent routes: what the dialog does with each intent the classifier picks.

An agent's ``routes`` map an intent name to an action object::

    {"farewell": {"action": "end"}, "hours": {"action": "say", "text": "We open at 9."}}

Actions: ``answer`` (the responder answers; the default), ``say`` (``text``),
``knowledge`` (an answer grounded in the agent's knowledge), ``tool``
(``tool``: a tool name), ``transfer`` (``to``: an E.164 number) and ``end``
(say ``text``, or the farewell line, then end the call). Intents without a
route answer, except ``farewell``, which ends the call unless routed
otherwise. Consumed by the model's validators, the API schemas' docs and the
dialog graph (workers/graph.py), which reads routes through
:func:`route_for`.
"""

from typing import Any

from django.core.exceptions import ValidationError

from voiceproj.phone import E164_MESSAGE, is_e164, normalize_phone_number

ANSWER = "answer"
SAY = "say"
KNOWLEDGE = "knowledge"
TOOL = "tool"
TRANSFER = "transfer"
END = "end"
ACTIONS = (ANSWER, SAY, KNOWLEDGE, TOOL, TRANSFER, END)
# The one extra key each action takes, and whether it must be given.
ACTION_FIELDS: dict[str, tuple[str | None, bool]] = {
    ANSWER: (None, False),
    SAY: ("text", True),
    KNOWLEDGE: (None, False),
    TOOL: ("tool", True),
    TRANSFER: ("to", True),
    END: ("text", False),
}
ROUTE_TEXT_MAX = 500
TOOL_NAME_MAX = 64
FAREWELL_INTENT = "farewell"
# What an intent without a route does: the farewell ends the call, as it did
# before routes existed; anything else is answered.
DEFAULT_ROUTES: dict[str, dict[str, str]] = {FAREWELL_INTENT: {"action": END}}
DEFAULT_ROUTE: dict[str, str] = {"action": ANSWER}


def route_for(routes: dict[str, dict[str, str]] | None, intent: str) -> dict[str, str]:
    """The route of ``intent``: the agent's own, else the default for that intent."""
    return (routes or {}).get(intent) or DEFAULT_ROUTES.get(intent) or DEFAULT_ROUTE


def route_errors(intent: str, route: Any) -> str | None:
    """Why one route is invalid (a sentence), or None. Its intent is checked elsewhere."""
    if not isinstance(route, dict):
        return f"The route of {intent!r} must be an object with an action."
    action = route.get("action")
    if action not in ACTIONS:
        choices = ", ".join(ACTIONS)
        return f"The route of {intent!r} has an unknown action {action!r}; use one of {choices}."
    field, required = ACTION_FIELDS[action]
    extra = set(route) - {"action"} - ({field} if field else set())
    if extra:
        return f"The {action!r} route of {intent!r} does not take {', '.join(sorted(extra))}."
    if field is None or (field not in route and not required):
        return None
    value = route.get(field)
    if not isinstance(value, str) or not value.strip():
        return f"The {action!r} route of {intent!r} needs a {field!r}."
    if field == "text" and len(value) > ROUTE_TEXT_MAX:
        return f"The text of route {intent!r} is longer than {ROUTE_TEXT_MAX} characters."
    if field == "tool" and len(value) > TOOL_NAME_MAX:
        return f"The tool name of route {intent!r} is longer than {TOOL_NAME_MAX} characters."
    if field == "to" and not is_e164(value):
        return f"The number of route {intent!r} is invalid. {E164_MESSAGE}"
    return None


def normalize_routes(value: Any) -> Any:
    """``value`` with each transfer number stripped of the separators people type
    (``+1 (415) 555-0199``); anything else is left for the validators."""
    if not isinstance(value, dict):
        return value
    return {
        intent: {**route, "to": normalize_phone_number(route["to"])}
        if isinstance(route, dict) and isinstance(route.get("to"), str)
        else route
        for intent, route in value.items()
    }


def validate_routes(value: Any) -> None:
    """Field validator: an object of intent name → a valid route."""
    if not isinstance(value, dict):
        raise ValidationError("Routes must be an object of intent name → route.")
    for intent, route in value.items():
        error = route_errors(intent, route)
        if error:
            raise ValidationError(error, code="invalid_route")


def check_route_intents(routes: dict[str, Any], intent_names: list[str]) -> None:
    """Every routed intent must be one of the agent's intents."""
    unknown = [name for name in routes if name not in intent_names]
    if unknown:
        raise ValidationError(
            f"Routes name intents the agent does not have: {', '.join(map(repr, unknown))}.",
            code="unknown_intent",
        )
