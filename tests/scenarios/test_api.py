"""Scenarios over REST: create and list, made from a call, owner scoping, validation.

Runs themselves are played by real workers in tests/scenarios/test_runs.py;
here a run is only queued (the broker is Redis; no worker takes it).
"""

import uuid

import pytest

from calls.scenarios.models import Scenario, ScenarioRun
from calls.services import start_session
from calls.turns import record_turn
from tests.conftest import jwt_headers

from ..api.helpers import fields, post

pytestmark = pytest.mark.django_db

SCENARIO = {
    "name": "Opening hours",
    "turns": [
        {"say": "When do you open?", "expect": {"intent": "question", "contains": "nine"}},
        {"say": "Bye!", "expect": {"ends_call": True}},
    ],
}


@pytest.fixture
def scenario(agent) -> Scenario:
    return Scenario.objects.create(
        agent=agent, name="Hours", turns=[{"say": "Hello", "expect": {"intent": "greeting"}}]
    )


def test_create_then_list_keeps_only_the_expectations_given(client, auth, agent):
    response = post(client, f"/api/agents/{agent.id}/scenarios", SCENARIO, **auth)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["turns"][1] == {
        "say": "Bye!",
        "expect": {
            "intent": None,
            "contains": None,
            "not_contains": None,
            "tool": None,
            "ends_call": True,
        },
    }
    assert Scenario.objects.get().turns[1] == {"say": "Bye!", "expect": {"ends_call": True}}
    listed = client.get(f"/api/agents/{agent.id}/scenarios", **auth).json()
    assert [(s["id"], s["name"], s["last_run"]) for s in listed] == [
        (created["id"], "Opening hours", None)
    ]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x", "turns": []}, "turns"),
        ({"name": "", "turns": SCENARIO["turns"]}, "name"),
        ({"name": "x", "turns": [{"say": ""}]}, "turns.0.say"),
        ({"name": "x", "turns": [{"say": "hi"}] * 21}, "turns"),
        ({"name": "x", "turns": [{"say": "x" * 2001}]}, "turns.0.say"),
        ({"name": "x", "turns": [{"say": "hi", "expect": {"contains": "x" * 201}}]}, None),
        ({"name": "x", "turns": [{"say": "hi", "expect": {"mood": "happy"}}]}, None),
    ],
)
def test_invalid_scenarios_are_422_naming_the_field(client, auth, agent, body, field):
    errors = fields(post(client, f"/api/agents/{agent.id}/scenarios", body, **auth))
    if field is not None:
        assert field in errors
    else:
        assert any(name.startswith("turns.0.expect") for name in errors), errors
    assert not Scenario.objects.exists()


def test_another_users_agent_scenario_and_run_are_404(client, agent, scenario, other_user):
    stranger = jwt_headers(other_user)
    run = ScenarioRun.objects.create(scenario=scenario)
    assert client.get(f"/api/agents/{agent.id}/scenarios", **stranger).status_code == 404
    assert (
        post(client, f"/api/agents/{agent.id}/scenarios", SCENARIO, **stranger).status_code == 404
    )
    assert client.get(f"/api/scenarios/{scenario.id}", **stranger).status_code == 404
    assert post(client, f"/api/scenarios/{scenario.id}/run", **stranger).status_code == 404
    assert client.get(f"/api/scenario-runs/{run.id}", **stranger).status_code == 404
    assert client.delete(f"/api/scenarios/{scenario.id}", **stranger).status_code == 404
    assert Scenario.objects.filter(pk=scenario.pk).exists()
    assert client.get(f"/api/scenario-runs/{uuid.uuid4()}", **stranger).status_code == 404


def test_a_run_is_queued_and_readable_by_its_owner(client, auth, scenario):
    response = post(client, f"/api/scenarios/{scenario.id}/run", **auth)
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    run = client.get(f"/api/scenario-runs/{run_id}", **auth).json()
    assert (run["run_id"], run["status"], run["turns"]) == (run_id, "queued", [])
    listed = client.get(f"/api/agents/{scenario.agent_id}/scenarios", **auth).json()
    assert listed[0]["last_run"]["id"] == run_id


def test_an_inactive_agents_scenario_is_not_run(client, auth, agent, scenario):
    agent.is_active = False
    agent.save()
    response = post(client, f"/api/scenarios/{scenario.id}/run", **auth)
    assert response.status_code == 409
    assert "inactive" in response.json()["detail"]
    assert not ScenarioRun.objects.exists()


def test_delete_removes_the_scenario(client, auth, scenario):
    assert client.delete(f"/api/scenarios/{scenario.id}", **auth).status_code == 204
    assert client.get(f"/api/scenarios/{scenario.id}", **auth).status_code == 404


def test_a_call_becomes_a_scenario_of_its_caller_lines_and_intents(client, auth, agent, user):
    session = start_session(agent, user)
    record_turn(str(session.id), 1, "user", text="What are your hours?")
    record_turn(str(session.id), 1, "agent", text="Nine to five.", intent="question")
    record_turn(str(session.id), 2, "user", text="Goodbye")
    record_turn(str(session.id), 2, "agent", text="Bye!", intent="farewell")
    response = post(client, f"/api/sessions/{session.id}/scenario", **auth)
    assert response.status_code == 201, response.content
    assert Scenario.objects.get(pk=response.json()["id"]).turns == [
        {"say": "What are your hours?", "expect": {"intent": "question"}},
        {"say": "Goodbye", "expect": {"intent": "farewell"}},
    ]


def test_a_call_without_caller_lines_makes_no_scenario(client, auth, agent, user, other_user):
    session = start_session(agent, user)
    assert "session_id" in fields(post(client, f"/api/sessions/{session.id}/scenario", **auth))
    stranger = jwt_headers(other_user)
    assert post(client, f"/api/sessions/{session.id}/scenario", **stranger).status_code == 404
