"""A user at the live-call quota, in real Chromium against the shared daphne
(default quotas: three live calls per user)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from django.conf import settings
from playwright.sync_api import Page, expect

from agents.models import Agent
from calls.models import CallSession
from calls.presence import PRESENCE_TTL_S, presence_key

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)
Shot = Callable[[Page, str], Path]
DEFAULT_LIVE_CALLS = 3


def active_calls(agent: Agent, count: int) -> list[CallSession]:
    return [CallSession.objects.create(agent=agent, user=agent.owner) for _ in range(count)]


def test_starting_a_call_past_the_quota_shows_why(page: Page, screenshot: Shot, make_user) -> None:
    user = make_user("busy")
    agent = Agent.objects.create(owner=user, name="Busy line")
    active_calls(agent, DEFAULT_LIVE_CALLS)
    log_in(page, "busy")

    page.goto("/call/")
    page.get_by_label("Agent").select_option(label="Busy line")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Start call").click()
    assert answer.value.status == 429
    expect(page.get_by_role("alert")).to_have_text(
        "You already have 3 active calls, the most one user may have at once. "
        "End one of them first."
    )
    screenshot(page, "call-start-quota")
    assert CallSession.objects.filter(user=user).count() == DEFAULT_LIVE_CALLS


def test_the_call_page_refused_for_too_many_live_calls_says_so(page: Page, make_user) -> None:
    """A session past the quota (made before the quota was lowered, say) whose
    socket the server refuses with 4429 while three others are live."""
    user = make_user("crowded")
    agent = Agent.objects.create(owner=user, name="Crowded line")
    live = active_calls(agent, DEFAULT_LIVE_CALLS)
    (extra,) = active_calls(agent, 1)
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for session in live:  # what the sockets of three other tabs hold
            client.set(presence_key(str(session.id)), "elsewhere", ex=PRESENCE_TTL_S)
        log_in(page, "crowded")
        page.goto(f"/call/{extra.id}/")
        expect(page.locator("#call")).to_have_attribute("data-state", "failed")
        expect(page.locator("#call-status")).to_have_text(
            "Your account already has as many live calls as it may have at once. "
            "End one, then reload this page."
        )
    finally:
        client.delete(*(presence_key(str(session.id)) for session in live))
        client.close()
