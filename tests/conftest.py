"""Fixtures every test directory may use: users, JWT headers, an agent, a closed port,
the fake Twilio REST API.

Directory conftests (``tests/pipeline``, ``tests/web`` ...) add their own.
"""

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from agents.models import Agent
from tests.fakes.server import FakeServer
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, twilio_server

PASSWORD = "a-long-test-password-42"


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    """``make_user("ann")`` creates ann (email ann@example.com, password ``PASSWORD``)."""

    def make(username: str, **extra: Any) -> User:
        extra.setdefault("email", f"{username}@example.com")
        return User.objects.create_user(username=username, password=PASSWORD, **extra)

    return make


@pytest.fixture
def user(make_user: Callable[..., User]) -> User:
    return make_user("operator")


@pytest.fixture
def other_user(make_user: Callable[..., User]) -> User:
    return make_user("stranger")


def jwt_headers(user: User) -> dict[str, str]:
    """Test-client keyword arguments that authenticate as ``user`` with an access JWT."""
    return {"HTTP_AUTHORIZATION": f"Bearer {AccessToken.for_user(user)}"}


@pytest.fixture
def auth(user: User) -> dict[str, str]:
    """JWT headers of ``user``: ``client.get(url, **auth)``."""
    return jwt_headers(user)


@pytest.fixture
def agent(user: User) -> Agent:
    return Agent.objects.create(
        owner=user, name="Support line", description="Answers billing questions", greeting="Hi!"
    )


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nobody listens on (the port was just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def twilio_fake(settings: Any) -> Iterator[FakeServer]:
    """A fake api.twilio.com, and settings for its account with the SDK pointed at it."""
    server = twilio_server()
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_API_BASE = server.url
    yield server
    server.close()
