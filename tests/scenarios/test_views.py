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
