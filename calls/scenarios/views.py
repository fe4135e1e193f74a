"""Scenario pages: an agent's scenarios with their last two runs, a run's outcome,
writing a scenario, and making one of a recorded call. Only the owner's objects
exist here."""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.auth import SignedInRequest
from agents.models import Agent
from calls.views import owned_session

from .forms import ScenarioForm
from .models import Scenario, ScenarioRun
from .services import NothingToReplay, queue_run, scenario_from_call

# While a run is not done its page reloads itself this often (a meta refresh:
# no script, so nothing for the Content-Security-Policy to allow).
RUN_REFRESH_S = 1


@login_required
def agent_scenarios(request: SignedInRequest, agent_id: int) -> HttpResponse:
    agent = get_object_or_404(Agent, pk=agent_id, owner=request.user)
    rows = [(scenario, *_last_two(scenario)) for scenario in agent.scenarios.all()]
    return render(request, "scenarios/list.html", {"agent": agent, "rows": rows})


@login_required
def new(request: SignedInRequest, agent_id: int) -> HttpResponse:
    """Write a scenario by hand; the API's schema decides what is valid."""
    agent = get_object_or_404(Agent, pk=agent_id, owner=request.user)
    form = ScenarioForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        name, turns = form.cleaned_data["name"], form.cleaned_data["turns"]
        Scenario.objects.create(agent=agent, name=name, turns=turns)
        messages.success(request, f"Scenario “{name}” saved.")
        return redirect("scenarios:list", agent_id=agent.pk)
    return render(request, "scenarios/form.html", {"agent": agent, "form": form})


def _last_two(scenario: Scenario) -> tuple[ScenarioRun | None, ScenarioRun | None]:
    runs = scenario.recent_runs()
    return (runs[0] if runs else None, runs[1] if len(runs) > 1 else None)


@login_required
@require_POST
def run(request: SignedInRequest, scenario_id: int) -> HttpResponse:
    scenario = get_object_or_404(
        Scenario.objects.select_related("agent"), pk=scenario_id, agent__owner=request.user
    )
    if not scenario.agent.is_active:
        messages.error(request, "The agent is inactive; activate it to run its scenarios.")
        return redirect("scenarios:list", agent_id=scenario.agent_id)
    return redirect("scenarios:run", run_id=queue_run(scenario).pk)


@login_required
def run_detail(request: SignedInRequest, run_id: UUID) -> HttpResponse:
    scenario_run = get_object_or_404(
        ScenarioRun.objects.select_related("scenario__agent"),
        pk=run_id,
        scenario__agent__owner=request.user,
    )
    context = {"run": scenario_run, "refresh_s": RUN_REFRESH_S}
    return render(request, "scenarios/run.html", context)


@login_required
@require_POST
def from_session(request: SignedInRequest, session_id: UUID) -> HttpResponse:
    session = owned_session(request, session_id)
    try:
        scenario = scenario_from_call(session)
    except NothingToReplay as exc:
        messages.error(request, str(exc))
        return redirect("calls:detail", session_id=session.pk)
    messages.success(request, f"Scenario “{scenario.name}” made from this call.")
    return redirect("scenarios:list", agent_id=session.agent_id)
