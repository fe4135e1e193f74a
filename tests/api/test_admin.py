"""Django admin: every list, search and filter renders; the end-sessions action works.

Its login is the site's (allauth): failed-attempt limits and the second factor apply.
"""

import re

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from accounts.models import User
from calls.models import CallSession
from calls.services import start_session
from calls.turns import record_turn

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    make_user("boss", is_staff=True, is_superuser=True)
    client.login(username="boss", password="a-long-test-password-42")
    return client


@pytest.fixture
def session(agent, user):
    call = start_session(agent, user)
    record_turn(str(call.id), 1, "user", text="Where is my parcel?", stt_ms=250)
    return call


@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/user/?q=operator&is_staff__exact=0",
        "/admin/agents/agent/?q=support&is_active__exact=1",
        "/admin/calls/callsession/?q=parcel&status__exact=active",
        "/admin/calls/turn/?q=parcel&speaker__exact=user",
    ],
)
def test_changelists_search_and_filter(admin_client, session, url):
    response = admin_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_agent_and_session_change_pages(admin_client, agent, session):
    agent_page = admin_client.get(f"/admin/agents/agent/{agent.id}/change/")
    assert agent_page.status_code == 200
    assert b"Conversation" in agent_page.content  # fieldset
    session_page = admin_client.get(f"/admin/calls/callsession/{session.id}/change/")
    assert session_page.status_code == 200
    assert b"Where is my parcel?" in session_page.content  # read-only turn inline


def test_end_sessions_action(admin_client, agent, user, session):
    other = start_session(agent, user)
    response = admin_client.post(
        "/admin/calls/callsession/",
        {"action": "end_sessions", "_selected_action": [str(session.id), str(other.id)]},
        follow=True,
    )
    assert b"Ended 2 session(s)." in response.content
    assert set(CallSession.objects.values_list("status", "end_reason")) == {
        ("ended", "ended_by_admin")
    }


def test_non_staff_cannot_use_admin(client, user):
    client.login(username="operator", password="a-long-test-password-42")
    assert client.get("/admin/agents/agent/").status_code == 302


def test_admin_adds_a_user_with_email(admin_client):
    assert admin_client.get("/admin/accounts/user/add/").status_code == 200
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "username": "added",
            "email": "added@example.com",
            "password1": "violet-harbour-77",
            "password2": "violet-harbour-77",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert User.objects.get(username="added").email == "added@example.com"


def test_email_is_unique_whatever_its_case(admin_client, user):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "username": "twin",
            "email": user.email.upper(),
            "password1": "violet-harbour-77",
            "password2": "violet-harbour-77",
            "usable_password": "true",
        },
    )
    assert response.status_code == 200  # the form comes back with an error
    assert not User.objects.filter(username="twin").exists()


def _admin_login_form_action(client) -> str:
    """Open the admin login as a browser would and return where its form posts."""
    page = client.get("/admin/login/?next=/admin/", follow=True)
    assert page.status_code == 200
    action = re.search(rb'<form[^>]*action="([^"]*)"', page.content)
    assert action, page.content[:2000]
    return action.group(1).decode().replace("&amp;", "&")


def _try_admin_password(client, action: str, password: str):
    # Both forms' field names: Django admin's ``username`` and allauth's ``login``.
    credentials = {"username": "boss", "login": "boss", "password": password, "next": "/admin/"}
    return client.post(action, credentials)


def test_admin_login_locks_out_password_guessing(client, make_user):
    make_user("boss", is_staff=True, is_superuser=True)
    action = _admin_login_form_action(client)
    for _ in range(5):  # allauth's ACCOUNT_RATE_LIMITS["login_failed"]: 5 per login
        assert _try_admin_password(client, action, "guess").status_code == 200
    locked = _try_admin_password(client, action, "a-long-test-password-42")
    assert b"Too many failed login attempts" in locked.content
    assert client.get("/admin/").status_code == 302  # still not signed in


def test_admin_login_floods_are_answered_429(client, make_user):
    make_user("boss", is_staff=True, is_superuser=True)
    action = _admin_login_form_action(client)
    statuses = [_try_admin_password(client, action, "guess").status_code for _ in range(31)]
    assert statuses[-1] == 429  # allauth's ACCOUNT_RATE_LIMITS["login"]: 30/m per address


def test_admin_login_signs_in_through_the_site_login(client, make_user):
    make_user("boss", is_staff=True, is_superuser=True)
    action = _admin_login_form_action(client)
    signed_in = _try_admin_password(client, action, "a-long-test-password-42")
    assert signed_in.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_admin_login_asks_a_staff_user_with_two_factor_for_the_code(client, make_user):
    boss = make_user("boss", is_staff=True, is_superuser=True)
    TOTP.activate(boss, generate_totp_secret())
    action = _admin_login_form_action(client)
    password_only = _try_admin_password(client, action, "a-long-test-password-42")
    assert password_only["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/admin/").status_code == 302  # not signed in without the code


def test_a_signed_in_non_staff_user_is_refused_the_admin_login(client, user):
    client.login(username="operator", password="a-long-test-password-42")
    refused = client.get("/admin/login/")
    assert refused.status_code == 403
    assert b"Access denied" in refused.content
