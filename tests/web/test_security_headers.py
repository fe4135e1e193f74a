"""The Content-Security-Policy in a real browser: our pages work under it, injected code does not.

The ``page`` fixture fails any browser test whose page reports a CSP
violation, so every page the browser tests visit is checked; these tests add
the pages no other test opens and show that the policy bites.
"""

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_pages_load_whole_under_the_policy(page: Page, make_user) -> None:
    make_user("ops", is_staff=True, is_superuser=True)
    response = page.goto("/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    log_in(page, "ops")
    page.goto("/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Voice Agent Platform API")
    page.goto("/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    page.goto("/agents/new/")
    expect(page.locator("#agent-form")).to_be_visible()


def test_injected_inline_script_does_not_run(context: BrowserContext) -> None:
    """On a page of its own: the ``page`` fixture would fail on the report this provokes."""
    page = context.new_page()
    blocked: list[str] = []
    page.goto("/")
    page.on("console", lambda message: blocked.append(message.text))
    page.evaluate(
        """() => {
            const script = document.createElement('script');
            script.textContent = 'window.injected = true';
            document.body.appendChild(script);
        }"""
    )
    assert page.evaluate("() => window.injected === undefined")
    assert any("Content Security Policy" in text for text in blocked)
