"""/api/auth: registration rules, JWT login, rotating refresh, logout, me."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from tests.conftest import PASSWORD

from .helpers import fields, post

pytestmark = pytest.mark.django_db

STRONG = "violet-harbour-lantern-7"


def register(client, **body):
    body = {"username": "newbie", "email": "newbie@example.com", "password": STRONG, **body}
    return post(client, "/api/auth/register", body)


def login(client, username="operator", password=PASSWORD):
    return post(client, "/api/auth/login", {"username": username, "password": password})


def test_register_creates_a_user_who_can_log_in(client):
    response = register(client)
    assert response.status_code == 201
    assert response.json()["username"] == "newbie"
    assert "password" not in response.json()
    assert login(client, "newbie", STRONG).status_code == 200


def test_register_emails_a_confirmation_link(client):
    assert register(client, email="Newbie@Example.com").status_code == 201
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["newbie@example.com"]
    assert "/accounts/confirm-email/" in mail.outbox[0].body


@override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_mandatory_verification_blocks_api_login_until_confirmed(client):
    register(client)
    refused = login(client, "newbie", STRONG)
    assert refused.status_code == 403
    assert "Confirm your email" in refused.json()["detail"]
    link = re.search(r"(/accounts/confirm-email/\S+/)", mail.outbox[0].body).group(1)
    client.post(link)
    assert login(client, "newbie", STRONG).status_code == 200


def test_register_rejects_duplicate_email_case_insensitively(client, user):
    response = register(client, email=user.email.upper())
    assert "already exists" in fields(response)["email"]
    assert not User.objects.filter(username="newbie").exists()


def test_register_rejects_duplicate_username(client, user):
    assert "already exists" in fields(register(client, username="OPERATOR"))["username"]


def test_register_applies_django_password_validators(client):
    errors = fields(register(client, password="12345"))
    assert "too short" in errors["password"]
    assert "numeric" in errors["password"]


def test_register_rejects_password_similar_to_username(client):
    response = register(client, username="harbourlantern", password="harbourlantern")
    assert "similar" in fields(response)["password"]


def test_register_rejects_bad_email_and_username(client):
    errors = fields(register(client, email="not-an-email", username="has space"))
    assert set(errors) == {"email", "username"}


def test_register_missing_field_is_named(client):
    response = post(client, "/api/auth/register", {"username": "x", "password": STRONG})
    assert fields(response) == {"email": "Field required"}


def test_login_returns_a_working_token_pair(client, user):
    response = login(client)
    assert response.status_code == 200
    tokens = response.json()
    me = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert me.json()["username"] == "operator"
    assert me.json()["email"] == "operator@example.com"


def test_login_with_email_works(client, user):
    assert login(client, "operator@example.com").status_code == 200


def test_login_with_wrong_password_is_401(client, user):
    response = login(client, password="wrong")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid username or password."


def test_inactive_user_cannot_log_in(client, user):
    user.is_active = False
    user.save()
    assert login(client).status_code == 401


def test_refresh_rotates_and_a_used_refresh_token_is_rejected(client, user):
    first = login(client).json()
    rotated = post(client, "/api/auth/refresh", {"refresh": first["refresh"]})
    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != first["refresh"]

    reused = post(client, "/api/auth/refresh", {"refresh": first["refresh"]})
    assert reused.status_code == 401
    assert "already used" in reused.json()["detail"]
    # The rotated token still works, exactly once.
    assert (
        post(client, "/api/auth/refresh", {"refresh": rotated.json()["refresh"]}).status_code == 200
    )


def test_refresh_after_logout_is_rejected(client, user):
    tokens = login(client).json()
    assert post(client, "/api/auth/logout", {"refresh": tokens["refresh"]}).status_code == 204
    assert post(client, "/api/auth/refresh", {"refresh": tokens["refresh"]}).status_code == 401
    assert post(client, "/api/auth/logout", {"refresh": tokens["refresh"]}).status_code == 401


def test_refresh_rejects_garbage_expired_and_access_tokens(client, user):
    expired = RefreshToken.for_user(user)
    expired.set_exp(lifetime=timedelta(seconds=-1))
    access = AccessToken.for_user(user)
    for token in ("garbage", str(expired), str(access)):
        assert post(client, "/api/auth/refresh", {"refresh": token}).status_code == 401


def test_refresh_for_deactivated_user_is_rejected(client, user):
    tokens = login(client).json()
    user.is_active = False
    user.save()
    assert post(client, "/api/auth/refresh", {"refresh": tokens["refresh"]}).status_code == 401


def test_me_requires_a_valid_access_token(client, user):
    expired = AccessToken.for_user(user)
    expired.set_exp(lifetime=timedelta(seconds=-1))
    refresh = RefreshToken.for_user(user)
    for header in (None, "Bearer garbage", f"Bearer {expired}", f"Bearer {refresh}", "Basic x"):
        extra = {"HTTP_AUTHORIZATION": header} if header else {}
        response = client.get("/api/auth/me", **extra)
        assert response.status_code == 401, header
        assert response.json()["detail"]


def test_token_of_a_deleted_user_is_401(client, user, auth):
    user.delete()
    assert client.get("/api/auth/me", **auth).status_code == 401


def test_auth_endpoints_are_rate_limited_per_client(client, user, settings):
    settings.API_AUTH_RATE = "3/m"
    for _ in range(3):
        assert login(client, password="guess").status_code == 401
    blocked = login(client)  # even the right password waits now
    assert blocked.status_code == 429
    assert blocked.json()["detail"] == "Too many requests."
    assert int(blocked["Retry-After"]) > 0
    assert post(client, "/api/auth/register", {}).status_code == 429
    elsewhere = post(
        client,
        "/api/auth/login",
        {"username": "operator", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.9",
    )
    assert elsewhere.status_code == 200


def test_a_new_forwarded_for_per_request_does_not_escape_the_auth_limit(client, user, settings):
    """Without a trusted proxy (NUM_PROXIES=0) X-Forwarded-For is the client's own words."""
    settings.API_AUTH_RATE = "3/m"
    for n in range(3):
        spoofed = {"HTTP_X_FORWARDED_FOR": f"203.0.113.{n}"}
        assert login_from(client, spoofed, password="guess").status_code == 401
    assert login_from(client, {"HTTP_X_FORWARDED_FOR": "198.51.100.7"}).status_code == 429


def login_from(client, headers, password=PASSWORD):
    body = {"username": "operator", "password": password}
    return post(client, "/api/auth/login", body, **headers)
