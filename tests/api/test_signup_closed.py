"""ALLOW_SIGNUP=false (allauth's ACCOUNT_SIGNUP_ENABLED) closes the API's
registration as it closes the web sign-up (tests/web/test_signup_closed.py
starts a server with the environment variable and checks both)."""

import pytest

from accounts.models import User

from .helpers import post

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "amber-quartz-meadow-31"
NEWCOMER = {"username": "newcomer", "email": "newcomer@example.com"}


def test_register_answers_403_while_signup_is_closed(client, settings):
    settings.ACCOUNT_SIGNUP_ENABLED = False
    response = post(client, "/api/auth/register", {**NEWCOMER, "password": NEW_PASSWORD})
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Sign-up is closed on this server; ask its administrator for an account."
    }
    assert not User.objects.filter(username="newcomer").exists()


def test_the_schema_documents_the_403(client):
    responses = client.get("/api/openapi.json").json()["paths"]["/api/auth/register"]["post"]
    assert "403" in responses["responses"]
