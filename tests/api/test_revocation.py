"""Tokens and sessions end when they should: password change, reset, log out everywhere.

Each test holds a token pair (and, where it matters, a logged-in browser) from
before the event and checks that none of it works after.
"""

import re

import pytest
from django.core import mail
from django.test import Client

from tests.conftest import PASSWORD

from .helpers import post

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "quartz-meadow-signal-93"


def token_pair(client: Client, password: str = PASSWORD) -> dict[str, str]:
    response = post(client, "/api/auth/login", {"username": "operator", "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {access}"}


def assert_revoked(client: Client, pair: dict[str, str]) -> None:
    assert client.get("/api/auth/me", **bearer(pair["access"])).status_code == 401
    assert post(client, "/api/auth/refresh", {"refresh": pair["refresh"]}).status_code == 401


def test_password_change_on_the_web_revokes_earlier_tokens(client, user):
    pair = token_pair(Client())
    client.force_login(user)
    changed = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert changed.status_code == 302, changed.content
    assert_revoked(Client(), pair)
    # The browser that changed it stays logged in; new tokens work.
    assert client.get("/dashboard/").status_code == 200
    fresh = token_pair(Client(), NEW_PASSWORD)
    assert Client().get("/api/auth/me", **bearer(fresh["access"])).status_code == 200


def test_password_reset_by_email_revokes_earlier_tokens(client, user):
    pair = token_pair(Client())
    client.post("/accounts/password/reset/", {"email": user.email})
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", mail.outbox[-1].body)
    assert link, mail.outbox[-1].body
    form = client.get(link.group(1), follow=True)
    reset = client.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link.group(1),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert reset.status_code == 302, reset.content
    assert_revoked(Client(), pair)


def test_log_out_everywhere_over_the_api_ends_every_token_and_web_session(user):
    browser = Client()
    browser.force_login(user)
    phone, laptop = token_pair(Client()), token_pair(Client())
    response = Client().post("/api/auth/logout-all", **bearer(laptop["access"]))
    assert response.status_code == 204
    assert_revoked(Client(), phone)
    assert_revoked(Client(), laptop)
    assert browser.get("/dashboard/").status_code == 302  # to the login page
    # Logging in again works as before.
    fresh = token_pair(Client())
    assert Client().get("/api/auth/me", **bearer(fresh["access"])).status_code == 200


def test_log_out_everywhere_on_the_web_ends_api_tokens_too(client, user):
    pair = token_pair(Client())
    other_browser = Client()
    other_browser.force_login(user)
    client.force_login(user)
    response = client.post("/accounts/logout/everywhere/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert_revoked(Client(), pair)
    assert other_browser.get("/dashboard/").status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_log_out_everywhere_needs_a_post_from_a_logged_in_user(client, user):
    assert client.post("/accounts/logout/everywhere/").status_code == 302  # to login
    client.force_login(user)
    assert client.get("/accounts/logout/everywhere/").status_code == 405
