"""Scenarios over REST: an agent's scenarios, one made from a real call, runs.

Scoped to the authenticated owner like every router: another user's agent,
call, scenario or run is a 404. A run is played by a worker
(scenarios/tasks.py); ``POST /scenarios/{sid}/run`` answers 202 at once with
the id to poll.
"""

from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.errors import HttpError

from accounts.auth import current_user, jwt_auth
from agents.api import owned_agent
from calls.api import owned_session
from voiceproj.errors import DbId, ErrorOut, ValidationErrorOut, field_error

from .models import Scenario, ScenarioRun
from .schemas import RunOut, RunStartedOut, ScenarioIn, ScenarioOut
from .services import NothingToReplay, queue_run, scenario_from_call, scenario_turns

router = Router(tags=["scenarios"], auth=jwt_auth)


def owned_scenario(request: HttpRequest, scenario_id: int) -> Scenario:
    return get_object_or_404(
        Scenario.objects.select_related("agent"),
        pk=scenario_id,
        agent__owner=current_user(request),
    )


@router.get("/agents/{agent_id}/scenarios", response={200: list[ScenarioOut], 404: ErrorOut})
def list_scenarios(request: HttpRequest, agent_id: DbId) -> list[Scenario]:
    """The agent's scenarios by name, each with its last run and the one before."""
    return list(owned_agent(request, agent_id).scenarios.all())


@router.post(
    "/agents/{agent_id}/scenarios",
    response={201: ScenarioOut, 404: ErrorOut, 422: ValidationErrorOut},
)
def create_scenario(request: HttpRequest, agent_id: DbId, payload: ScenarioIn):  # type: ignore[no-untyped-def]
    agent = owned_agent(request, agent_id)
    turns = scenario_turns(payload.dict()["turns"])
    return Status(201, Scenario.objects.create(agent=agent, name=payload.name, turns=turns))


@router.post(
    "/sessions/{session_id}/scenario",
    response={201: ScenarioOut, 404: ErrorOut, 422: ValidationErrorOut},
)
def scenario_from_session(request: HttpRequest, session_id: UUID):  # type: ignore[no-untyped-def]
    """A scenario of the call's caller lines; each expects the intent the agent gave it."""
    try:
        return Status(201, scenario_from_call(owned_session(request, session_id)))
    except NothingToReplay as exc:
        raise field_error("session_id", str(exc)) from exc


@router.get("/scenarios/{scenario_id}", response={200: ScenarioOut, 404: ErrorOut})
def get_scenario(request: HttpRequest, scenario_id: DbId) -> Scenario:
    return owned_scenario(request, scenario_id)


@router.delete("/scenarios/{scenario_id}", response={204: None, 404: ErrorOut})
def delete_scenario(request: HttpRequest, scenario_id: DbId):  # type: ignore[no-untyped-def]
    """Delete the scenario and its runs (the calls they played stay in the sessions)."""
    owned_scenario(request, scenario_id).delete()
    return Status(204, None)


@router.post(
    "/scenarios/{scenario_id}/run", response={202: RunStartedOut, 404: ErrorOut, 409: ErrorOut}
)
def run_scenario(request: HttpRequest, scenario_id: DbId):  # type: ignore[no-untyped-def]
    """Queue a run; poll ``GET /scenario-runs/{run_id}`` until it passed or failed."""
    scenario = owned_scenario(request, scenario_id)
    if not scenario.agent.is_active:
        raise HttpError(409, "This agent is inactive; activate it to run its scenarios.")
    return Status(202, {"run_id": queue_run(scenario).pk})


@router.get("/scenario-runs/{run_id}", response={200: RunOut, 404: ErrorOut})
def get_run(request: HttpRequest, run_id: UUID) -> ScenarioRun:
    return get_object_or_404(ScenarioRun, pk=run_id, scenario__agent__owner=current_user(request))
