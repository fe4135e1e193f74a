"""Two-factor authentication in real Chromium: turn it on, then log in with each kind of code.

The authenticator app is played by pyotp, which reads the secret the page shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import Page, expect

from accounts.models import User
from tests.conftest import PASSWORD
from tests.totp import current_code, other_code

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)
Shot = Callable[[Page, str], Path]


def enter_password(page: Page, username: str) -> None:
    """The first step of a login that two-factor authentication continues."""
    page.goto("/accounts/login/")
    page.get_by_label("Login").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/accounts/2fa/authenticate/")


def enter_code(page: Page, code: str) -> None:
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Sign In").click()


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(lambda url: url.endswith("/"))


def test_enable_totp_then_log_in_with_a_code_or_a_recovery_code(
    page: Page, screenshot: Shot
) -> None:
    user = User.objects.create_user(
        username="guarded", email="guarded@example.com", password=PASSWORD
    )
    # allauth lets only a confirmed address turn on two-factor authentication.
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    log_in(page, "guarded")

    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Two-factor authentication"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-Factor Authentication")
    expect(page.get_by_role("navigation", name="Account")).to_be_visible()
    screenshot(page, "mfa-index")

    page.get_by_role("link", name="Activate").click()
    # allauth asks for the password again before it changes a second factor.
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm Access")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    qr = page.locator('img[src^="data:image/svg+xml;base64,"]')
    expect(qr).to_be_visible()  # drawn by the server: nothing is fetched from elsewhere
    secret = page.get_by_label("Authenticator secret").input_value()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    screenshot(page, "mfa-activate")
    page.get_by_label("Authenticator code").fill(other_code(current_code(secret)))
    page.get_by_role("button", name="Activate").click()
    expect(page.locator(".field-error, .alert.error").first).to_contain_text("Incorrect code")
    page.get_by_label("Authenticator code").fill(current_code(secret))
    page.get_by_role("button", name="Activate").click()

    page.wait_for_url("**/accounts/2fa/recovery-codes/")
    codes = page.get_by_label("Unused codes").input_value().split()
    assert len(codes) == 10 and all(re.fullmatch(r"\d{8}", code) for code in codes), codes
    screenshot(page, "mfa-recovery-codes")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download codes").click()
    assert set(codes) <= set(Path(download.value.path()).read_text().split())
    log_out(page)

    enter_password(page, "guarded")
    screenshot(page, "mfa-authenticate")
    enter_code(page, current_code(secret))
    page.wait_for_url("**/dashboard/")
    log_out(page)

    enter_password(page, "guarded")
    enter_code(page, codes[0])
    page.wait_for_url("**/dashboard/")
    log_out(page)

    # The same recovery code a second time is refused, and the login goes no further.
    enter_password(page, "guarded")
    enter_code(page, codes[0])
    expect(page.get_by_text("Incorrect code.")).to_be_visible()
    screenshot(page, "mfa-authenticate-used-code")
    page.goto("/dashboard/")  # the site stays behind the second factor
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url("**/accounts/login/")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Log in")
    ).to_be_visible()
