"""Writing a scenario on the web: its lines as plain text, checked by the API's schema.

Consumes the form's ``name`` and ``script``: a ``say:`` line per caller line,
each followed by indented expectations (``intent:``, ``contains:``,
``not_contains:``, ``tool:``, ``ends_call: yes|no``). Produces the turns as
``POST /api/agents/{id}/scenarios`` stores them, with the same bounds
(calls/scenarios/schemas.py), so the page and the API cannot disagree.
"""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from pydantic import ValidationError as SchemaError

from .models import NAME_MAX
from .schemas import ExpectSchema, ScenarioIn
from .services import scenario_turns

EXPECTATIONS = tuple(ExpectSchema.model_fields)
YES, NO = {"yes", "true"}, {"no", "false"}


def parse_script(script: str) -> list[dict[str, Any]]:
    """The turns of ``script``; a line it cannot read is a ValidationError naming it."""
    turns: list[dict[str, Any]] = []
    for number, line in enumerate(script.splitlines(), 1):
        if not line.strip():
            continue
        key, colon, value = line.strip().partition(":")
        key, value = key.strip().casefold(), value.strip()
        if not colon or not value:
            raise ValidationError(f"Line {number}: write “say: …” or an expectation “intent: …”.")
        if key == "say":
            turns.append({"say": value, "expect": {}})
        elif key not in EXPECTATIONS:
            raise ValidationError(
                f"Line {number}: {key!r} is not an expectation ({', '.join(EXPECTATIONS)})."
            )
        elif not turns:
            raise ValidationError(f"Line {number}: an expectation follows a “say:” line.")
        elif key == "ends_call":
            if value.casefold() not in YES | NO:
                raise ValidationError(f"Line {number}: ends_call is “yes” or “no”.")
            turns[-1]["expect"]["ends_call"] = value.casefold() in YES
        else:
            turns[-1]["expect"][key] = value
    return turns


class ScenarioForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX)
    script = forms.CharField(
        label="Lines",
        widget=forms.Textarea(attrs={"rows": 10, "class": "mono"}),
        help_text="A “say:” line per caller line; under it, what the answer must do: "
        "“intent: question”, “contains: nine”, “not_contains: sorry”, “tool: check_order”, "
        "“ends_call: yes”.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        turns = parse_script(cleaned["script"]) if cleaned.get("script") else []
        try:
            scenario = ScenarioIn.model_validate({"name": cleaned["name"], "turns": turns})
        except SchemaError as exc:
            raise ValidationError([_readable(error) for error in exc.errors()]) from exc
        cleaned["turns"] = scenario_turns(scenario.model_dump()["turns"])
        return cleaned


def _readable(error: Any) -> str:
    """A schema error as the page says it: turn numbers from 1, the field, the reason."""
    place = [str(p + 1) if isinstance(p, int) else str(p) for p in error["loc"]]
    where = " ".join(("turn" if p == "turns" else p) for p in place)
    return f"{where}: {error['msg']}" if where else str(error["msg"])
