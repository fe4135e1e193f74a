"""The agent builder's routes box and knowledge section, and the sources a
session page cites, in real Chromium against a real daphne."""

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agents.models import Agent, KnowledgeEntry
from calls.services import end_session, start_session
from calls.turns import record_turn

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)
Shot = Callable[[Page, str], Path]


def test_routes_and_knowledge_are_edited_in_the_builder(
    page: Page, screenshot: Shot, make_user
) -> None:
    user = make_user("builder")
    agent = Agent.objects.create(owner=user, name="Bakery line")
    log_in(page, "builder")
    page.goto(f"/agents/{agent.pk}/edit/")

    # A route with a missing number is refused beside the box, nothing saved.
    page.get_by_label("Routes").fill('{"clarification": {"action": "transfer"}}')
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator('[data-error-for="routes"]')).to_contain_text("needs a 'to'")
    page.get_by_label("Routes").fill(
        '{"question": {"action": "knowledge"}, '
        '"clarification": {"action": "transfer", "to": "+1 415 555 0199"}}'
    )
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Agent “Bakery line” saved.")).to_be_visible()
    agent.refresh_from_db()
    assert agent.routes == {
        "question": {"action": "knowledge"},
        "clarification": {"action": "transfer", "to": "+14155550199"},
    }

    page.goto(f"/agents/{agent.pk}/edit/")
    expect(page.locator("#knowledge-empty")).to_be_visible()
    page.get_by_label("Title").fill("Opening hours")
    page.get_by_label("Content").fill("We bake from 6:30 on weekdays and open at noon on Sundays.")
    page.get_by_role("button", name="Add knowledge").click()
    expect(page.get_by_text("Knowledge “Opening hours” added.")).to_be_visible()
    entry = KnowledgeEntry.objects.get(agent=agent)
    item = page.locator(f'[data-knowledge-id="{entry.pk}"]')
    expect(item.locator(".knowledge-title")).to_have_text("Opening hours")
    screenshot(page, "agent-knowledge")

    item.get_by_role("link", name="Edit").click()
    page.get_by_label("Content").fill("We open at noon on Sundays only.")
    page.get_by_role("button", name="Save knowledge").click()
    expect(item.locator(".knowledge-content")).to_have_text("We open at noon on Sundays only.")
    assert KnowledgeEntry.objects.get(pk=entry.pk).passages.get().text == (
        "We open at noon on Sundays only."
    )

    item.get_by_role("button", name="Delete “Opening hours”").click()
    expect(page.get_by_text("Knowledge “Opening hours” deleted.")).to_be_visible()
    expect(page.locator("#knowledge-empty")).to_be_visible()
    assert not KnowledgeEntry.objects.filter(agent=agent).exists()


def test_a_session_page_cites_the_knowledge_a_reply_used(page: Page, make_user) -> None:
    user = make_user("reviewer")
    agent = Agent.objects.create(owner=user, name="Bakery line")
    entry = KnowledgeEntry.objects.create(agent=agent, title="Opening hours", content="Noon.")
    session = start_session(agent, user)
    record_turn(str(session.id), 1, "user", text="When do you open on Sunday?")
    record_turn(str(session.id), 1, "agent", text="Noon.", intent="question", sources=[entry.pk])
    end_session(session, "hangup")
    log_in(page, "reviewer")
    page.goto(f"/sessions/{session.id}/")
    expect(page.locator(f'[data-source-id="{entry.pk}"]')).to_have_text(
        f"#{entry.pk} Opening hours"
    )
