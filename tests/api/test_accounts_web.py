"""allauth web pages: sign up, log out, log in, and reset a forgotten password by email."""

import re

import pytest
from django.core import mail

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "amber-quartz-meadow-31"


@pytest.mark.parametrize(
    "url", ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]
)
def test_auth_pages_render(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert b"<form" in response.content


def test_signup_logs_the_new_user_in(client):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "ann@example.com",
            "username": "ann",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(username="ann", email="ann@example.com").exists()
    assert client.session.get("_auth_user_id")


def test_signup_refuses_a_taken_email(client, user):
    response = client.post(
        "/accounts/signup/",
        {
            "email": user.email.upper(),
            "username": "copycat",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 200
    assert not User.objects.filter(username="copycat").exists()


def test_login_and_logout(client, user):
    response = client.post("/accounts/login/", {"login": "operator", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(user.pk)
    client.post("/accounts/logout/")
    assert "_auth_user_id" not in client.session


def test_password_reset_by_email(client, user):
    response = client.post("/accounts/password/reset/", {"email": user.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/password/reset/key/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body

    form = client.get(link.group(1), follow=True)
    assert form.status_code == 200
    set_url = form.redirect_chain[-1][0] if form.redirect_chain else link.group(1)
    done = client.post(set_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
