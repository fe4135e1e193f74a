"""Making scenarios and starting runs, shared by the REST API, the pages and the command."""

from typing import Any

from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from calls.models import CallSession, Turn
from voiceproj.celery import app as celery_app
from voiceproj.pipeline import RUN_SCENARIO_TASK, TASK_QUEUES

from .models import NAME_MAX, SAY_MAX, TURNS_MAX, Scenario, ScenarioRun


class NothingToReplay(Exception):
    """The call has no caller line to make a scenario of."""


def scenario_turns(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validated turns as stored: expectations that were not given are left out."""
    return [
        {"say": turn["say"], "expect": {k: v for k, v in turn["expect"].items() if v is not None}}
        for turn in turns
    ]


def scenario_from_call(session: CallSession) -> Scenario:
    """A scenario of the call's caller lines, each expecting the intent the agent
    gave it then; the first TURNS_MAX lines of a longer call."""
    agent_intents = dict(
        Turn.objects.filter(session=session, speaker=Turn.Speaker.AGENT).values_list(
            "turn_id", "intent"
        )
    )
    turns = []
    for turn in session.turns.filter(speaker=Turn.Speaker.USER).exclude(text="").order_by("index"):
        expect = {"intent": agent_intents[turn.turn_id]} if agent_intents.get(turn.turn_id) else {}
        turns.append({"say": turn.text[:SAY_MAX], "expect": expect})
    if not turns:
        raise NothingToReplay("This call has no caller lines to make a scenario of.")
    name = f"Call of {session.started_at:%Y-%m-%d %H:%M}"[:NAME_MAX]
    return Scenario.objects.create(agent=session.agent, name=name, turns=turns[:TURNS_MAX])


def queue_run(scenario: Scenario) -> ScenarioRun:
    """A queued run of ``scenario``, handed to a ``default``-queue worker."""
    run = ScenarioRun.objects.create(scenario=scenario)
    try:
        celery_app.send_task(
            RUN_SCENARIO_TASK, args=[str(run.pk)], queue=TASK_QUEUES[RUN_SCENARIO_TASK]
        )
    except BrokerError:
        # The run is still answered and shown: failed, with the reason.
        run.status = ScenarioRun.Status.FAILED
        run.error = "The workers' queue cannot be reached; try again in a moment."
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
    return run
