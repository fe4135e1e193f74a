"""Runs that cannot hold a call fail at once with the reason, no worker needed."""

import pytest

from calls.models import CallSession
from calls.scenarios.models import Scenario, ScenarioRun
from calls.scenarios.runner import play
from calls.services import start_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(agent) -> Scenario:
    return Scenario.objects.create(agent=agent, name="Hours", turns=[{"say": "Hi", "expect": {}}])


def test_a_run_past_the_owners_call_quota_fails_with_the_quota(settings, scenario, agent, user):
    settings.VOICE_MAX_ACTIVE_CALLS_PER_USER = 1
    start_session(agent, user)
    run = play(ScenarioRun.objects.create(scenario=scenario))
    assert run.status == ScenarioRun.Status.FAILED
    assert "active calls" in run.error
    assert (run.turns, run.session) == ([], None)
    assert CallSession.objects.count() == 1


def test_a_run_of_an_agent_made_inactive_since_it_was_queued_fails(scenario, agent):
    run = ScenarioRun.objects.create(scenario=scenario)
    agent.is_active = False
    agent.save()
    run = play(ScenarioRun.objects.select_related("scenario__agent").get(pk=run.pk))
    assert (run.status, run.error) == (
        ScenarioRun.Status.FAILED,
        "The agent is inactive; activate it to run its scenarios.",
    )
    assert run.finished_at is not None
