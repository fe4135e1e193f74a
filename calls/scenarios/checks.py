"""What a scenario expects of one agent turn, checked against what happened.

Each expectation a turn states gives one check ``{name, ok, detail}``; a
turn whose pipeline reported an error gets a failing ``error`` check besides,
so a fallback line that happens to satisfy the expectations still fails.
"""

from dataclasses import dataclass, field
from typing import Any, TypedDict


class Check(TypedDict):
    name: str
    ok: bool
    detail: str


@dataclass
class TurnOutcome:
    """What the caller got for one line: the reply, its intent, errors, a hang-up."""

    reply: str = ""
    intent: str = ""
    errors: list[str] = field(default_factory=list)
    ended_call: bool = False
    tools: list[str] = field(default_factory=list)  # names of the tools it called


def check_turn(expect: dict[str, Any], outcome: TurnOutcome) -> list[Check]:
    """One check per expectation in ``expect`` (in a fixed order), plus ``error``."""
    checks: list[Check] = []
    reply = outcome.reply.casefold()
    if expect.get("intent") is not None:
        wanted = expect["intent"]
        got = outcome.intent or "none"
        ok = outcome.intent.casefold() == wanted.casefold()
        checks.append(_check("intent", ok, f"expected intent {wanted!r}, got {got!r}"))
    if expect.get("contains") is not None:
        phrase = expect["contains"]
        ok = phrase.casefold() in reply
        checks.append(_check("contains", ok, f"the reply {_has(ok)} {phrase!r}"))
    if expect.get("not_contains") is not None:
        phrase = expect["not_contains"]
        found = phrase.casefold() in reply
        checks.append(_check("not_contains", not found, f"the reply {_has(found)} {phrase!r}"))
    if expect.get("tool") is not None:
        wanted = expect["tool"]
        called = ", ".join(outcome.tools) or "no tool"
        ok = wanted in outcome.tools
        checks.append(_check("tool", ok, f"expected tool {wanted!r}, the agent called {called}"))
    if expect.get("ends_call") is not None:
        wanted_end = bool(expect["ends_call"])
        ok = outcome.ended_call == wanted_end
        did = "ended" if outcome.ended_call else "did not end"
        checks.append(_check("ends_call", ok, f"the agent {did} the call"))
    if outcome.errors:
        checks.append(_check("error", False, "; ".join(outcome.errors)))
    return checks


def _check(name: str, ok: bool, detail: str) -> Check:
    return {"name": name, "ok": ok, "detail": detail}


def _has(found: bool) -> str:
    return "contains" if found else "lacks"
