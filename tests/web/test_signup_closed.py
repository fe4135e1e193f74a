"""``ALLOW_SIGNUP=false`` in a server's environment closes both ways to create
an account: the sign-up page (in real Chromium) and ``POST /api/auth/register``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from tests.pipeline.conftest import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)
Shot = Callable[[Page, str], Path]


@pytest.fixture(scope="module")
def closed_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    return live_server_factory(ALLOW_SIGNUP="false")


@pytest.fixture
def closed_page(browser: Browser, closed_server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(base_url=closed_server.url)
    yield context.new_page()
    context.close()


def test_a_server_with_signup_off_creates_no_accounts(
    closed_server: LiveServer, closed_page: Page, screenshot: Shot
) -> None:
    closed_page.goto("/accounts/signup/")
    expect(closed_page.get_by_role("heading", level=1)).to_have_text("Sign Up Closed")
    expect(closed_page.get_by_label("Username")).to_have_count(0)
    screenshot(closed_page, "signup-closed")

    answer = httpx.post(
        f"{closed_server.url}/api/auth/register",
        json={"username": "newcomer", "email": "newcomer@example.com", "password": "x-9" * 5},
    )
    assert answer.status_code == 403
    assert answer.json()["detail"].startswith("Sign-up is closed on this server")
    assert not User.objects.filter(username="newcomer").exists()
