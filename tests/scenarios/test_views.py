"""Scenario pages without a browser: owner scoping and refusals."""

import pytest

from calls.scenarios.models import Scenario, ScenarioRun
from calls.services import start_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(agent) -> Scenario:
    return Scenario.objects.create(agent=agent, name="Hours", turns=[{"say": "Hi", "expect": {}}])


def test_another_users_scenario_pages_are_404(client, agent, scenario, other_user, user):
    run = ScenarioRun.objects.create(scenario=scenario)
    session = start_session(agent, user)
    client.force_login(other_user)
    assert client.get(f"/agents/{agent.id}/scenarios/").status_code == 404
    assert client.get(f"/scenario-runs/{run.id}/").status_code == 404
    assert client.post(f"/scenarios/{scenario.id}/run/").status_code == 404
    assert client.post(f"/sessions/{session.id}/scenario/").status_code == 404
    assert ScenarioRun.objects.count() == 1 and Scenario.objects.count() == 1


def test_a_call_without_lines_is_refused_with_a_message(client, agent, user):
    session = start_session(agent, user)
    client.force_login(user)
    response = client.post(f"/sessions/{session.id}/scenario/", follow=True)
    assert "no caller lines" in response.content.decode()
    assert not Scenario.objects.exists()


def test_an_inactive_agents_scenario_is_not_run_from_the_page(client, agent, scenario, user):
    agent.is_active = False
    agent.save()
    client.force_login(user)
    response = client.post(f"/scenarios/{scenario.id}/run/", follow=True)
    assert "inactive" in response.content.decode()
    assert not ScenarioRun.objects.exists()


def test_admin_lists_scenarios_and_shows_their_runs(admin_client, scenario):
    ScenarioRun.objects.create(scenario=scenario, status=ScenarioRun.Status.PASSED)
    listing = admin_client.get("/admin/scenarios/scenario/?q=Hours")
    assert listing.status_code == 200 and "Hours" in listing.content.decode()
    page = admin_client.get(f"/admin/scenarios/scenario/{scenario.pk}/change/")
    assert page.status_code == 200 and "Passed" in page.content.decode()


SCRIPT = """say: When do you open on Saturday?
  intent: question
  contains: nine
say: Thanks, bye
  not_contains: sorry
  ends_call: yes
"""


def test_a_scenario_written_on_the_page_is_stored_as_the_api_stores_it(client, agent, user):
    client.force_login(user)
    response = client.post(
        f"/agents/{agent.id}/scenarios/new/", {"name": "Saturday", "script": SCRIPT}
    )
    assert response.status_code == 302
    scenario = Scenario.objects.get(agent=agent)
    assert scenario.name == "Saturday"
    assert scenario.turns == [
        {
            "say": "When do you open on Saturday?",
            "expect": {"intent": "question", "contains": "nine"},
        },
        {"say": "Thanks, bye", "expect": {"not_contains": "sorry", "ends_call": True}},
    ]


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("  intent: question\nsay: Hi", "an expectation follows"),
        ("say: Hi\n  mood: happy", "is not an expectation"),
        ("say: Hi\n  ends_call: maybe", "ends_call is"),
        ("say Hi", "Line 1"),
        ("say: " + "x" * 3000, "turn 1 say"),
    ],
)
def test_a_script_the_page_cannot_read_is_refused_with_the_line(
    client, agent, user, script, message
):
    client.force_login(user)
    response = client.post(f"/agents/{agent.id}/scenarios/new/", {"name": "Bad", "script": script})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Scenario.objects.exists()


def test_another_users_agent_gets_no_new_scenario(client, agent, other_user):
    client.force_login(other_user)
    response = client.post(f"/agents/{agent.id}/scenarios/new/", {"name": "X", "script": SCRIPT})
    assert response.status_code == 404
    assert not Scenario.objects.exists()
