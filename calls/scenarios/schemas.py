"""Request and response bodies of the scenario endpoints (scenarios/api.py)."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from ninja import Schema
from pydantic import ConfigDict, Field

from agents.models import INTENT_NAME_MAX
from voiceproj.errors import InputSchema

from .models import (
    NAME_MAX,
    PHRASE_MAX,
    SAY_MAX,
    TOOL_NAME_MAX,
    TURNS_MAX,
    Scenario,
    ScenarioRun,
)


class ExpectSchema(InputSchema):
    """What the agent's answer to one line must satisfy; every part is optional."""

    # A misspelt expectation would otherwise check nothing and always pass.
    model_config = ConfigDict(extra="forbid")

    intent: str | None = Field(
        None, min_length=1, max_length=INTENT_NAME_MAX, description="The intent it gets."
    )
    contains: str | None = Field(
        None, min_length=1, max_length=PHRASE_MAX, description="Text the reply holds (any case)."
    )
    not_contains: str | None = Field(
        None, min_length=1, max_length=PHRASE_MAX, description="Text the reply must not hold."
    )
    tool: str | None = Field(
        None,
        min_length=1,
        max_length=TOOL_NAME_MAX,
        description="A tool the agent calls on this turn (its `tool.call` event).",
    )
    ends_call: bool | None = Field(None, description="Whether the agent ends the call.")


class ScenarioTurnSchema(InputSchema):
    say: str = Field(min_length=1, max_length=SAY_MAX, description="The caller's line, typed.")
    expect: ExpectSchema = Field(default_factory=lambda: ExpectSchema.model_validate({}))


class ScenarioIn(InputSchema):
    name: str = Field(min_length=1, max_length=NAME_MAX)
    turns: list[ScenarioTurnSchema] = Field(min_length=1, max_length=TURNS_MAX)


class RunSummaryOut(Schema):
    id: UUID
    status: Literal["queued", "running", "passed", "failed"]
    created_at: datetime


class ScenarioOut(Schema):
    id: int
    agent_id: int
    name: str
    turns: list[ScenarioTurnSchema]
    created_at: datetime
    last_run: RunSummaryOut | None = Field(description="The newest run.")
    previous_run: RunSummaryOut | None = Field(description="The run before it, to compare.")

    @staticmethod
    def resolve_last_run(scenario: Scenario) -> ScenarioRun | None:
        return next(iter(scenario.recent_runs()), None)

    @staticmethod
    def resolve_previous_run(scenario: Scenario) -> ScenarioRun | None:
        return next(iter(scenario.recent_runs()[1:]), None)


class CheckOut(Schema):
    name: str
    ok: bool
    detail: str


class RunTurnOut(Schema):
    say: str
    reply: str
    intent: str
    checks: list[CheckOut]
    ms: int | None


class RunStartedOut(Schema):
    run_id: UUID


class RunOut(Schema):
    run_id: UUID
    scenario_id: int
    status: Literal["queued", "running", "passed", "failed"]
    error: str = Field(description="Why the run failed as a whole (no call could be held).")
    turns: list[RunTurnOut]
    session_id: UUID | None = Field(description="The call the run played.")
    created_at: datetime
    finished_at: datetime | None

    @staticmethod
    def resolve_run_id(run: ScenarioRun) -> UUID:
        return run.id
