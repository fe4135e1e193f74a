"""The scenario pages in real Chromium against the scenario stack's daphne:
a call becomes a scenario, the scenario runs from its page through the
workers, and the agent's page sets the last run beside the one before.
The ``page`` fixture fails the test on any Content-Security-Policy report.
It lives with the other browser tests: their one Playwright instance is
session-wide, and a second one in the same process cannot start."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from agents.models import Agent
from calls.services import end_session, start_session
from calls.turns import record_turn
from tests.pipeline.instant_stack import InstantStack
from tests.scenarios.conftest import scenario_stack  # noqa: F401  (fixture)
from workers.engines.instant import REPLY

from .conftest import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

# A run on the instant engines takes a few seconds (far more on a loaded box);
# the page refreshes every second.
RUN_TIMEOUT_MS = 120_000


@pytest.fixture
def context(browser: Browser, scenario_stack: InstantStack) -> Iterator[BrowserContext]:  # noqa: F811
    """Pages served by the daphne whose ``default`` worker plays runs."""
    context = browser.new_context(base_url=scenario_stack.server.url)
    yield context
    context.close()


def run_from_the_list(on: Page) -> None:
    on.get_by_role("button", name="Run").click()
    expect(on.locator("#run-turns")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(on.get_by_text("Passed", exact=True)).to_be_visible()


def test_a_call_becomes_a_scenario_that_runs_from_the_agents_page(
    page: Page,  # noqa: F811
    screenshot,  # noqa: F811
    make_user,
) -> None:
    user = make_user("tester")
    agent = Agent.objects.create(owner=user, name="Front desk")
    session = start_session(agent, user)
    record_turn(str(session.id), 1, "user", text="Hello there")
    record_turn(str(session.id), 1, "agent", text="Hi! How can I help?", intent="greeting")
    end_session(session, "hangup")
    log_in(page, "tester")

    page.goto(f"/sessions/{session.id}/")
    page.get_by_role("button", name="Make a scenario from this call").click()
    expect(page.get_by_role("heading", name="Scenarios of Front desk")).to_be_visible()
    expect(page.locator(".last-run")).to_have_text("never run")

    run_from_the_list(page)
    turns = page.locator("#run-turns tbody tr")
    expect(turns).to_have_count(1)
    expect(turns.first).to_contain_text("Hello there")
    expect(turns.first).to_contain_text(REPLY)
    expect(turns.first).to_contain_text("✓ intent: expected intent 'greeting', got 'greeting'")
    screenshot(page, "scenario-run")

    page.get_by_role("link", name="All scenarios of Front desk").click()
    run_from_the_list(page)
    page.get_by_role("link", name="All scenarios of Front desk").click()
    expect(page.locator(".last-run")).to_contain_text("Passed")
    expect(page.locator(".previous-run")).to_contain_text("Passed")
    screenshot(page, "scenarios-list")


def test_a_scenario_written_on_its_page_runs_and_fails_for_the_right_reason(
    page: Page,  # noqa: F811
    make_user,
) -> None:
    user = make_user("writer")
    Agent.objects.create(owner=user, name="Hours line")
    log_in(page, "writer")
    page.goto("/agents/")
    page.get_by_role("link", name="Scenarios").click()
    page.get_by_role("link", name="New scenario").click()

    page.get_by_label("Name").fill("Opening hours")
    page.get_by_label("Lines").fill("say: When do you open?\n  contains: closed on Mondays\n")
    page.get_by_role("button", name="Save scenario").click()
    expect(page.get_by_text("Scenario “Opening hours” saved.")).to_be_visible()

    page.get_by_role("button", name="Run").click()
    expect(page.locator("#run-turns")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_text("Failed", exact=True)).to_be_visible()
    expect(page.locator("#run-turns")).to_contain_text(
        "✗ contains: the reply lacks 'closed on Mondays'"
    )
