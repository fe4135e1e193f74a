"""Fixtures every test directory may use: users, JWT headers, an agent, a closed
port, the fake Twilio REST API; and, once per run, per-user quota windows left
in Redis by an earlier run.

Directory conftests (``tests/pipeline``, ``tests/web`` ...) add their own.
"""

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from agents.models import Agent
from tests.fakes.server import FakeServer
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, twilio_server

PASSWORD = "a-long-test-password-42"
QUOTA_KEYS = "voice:quota:*"


def clear_quota_windows(redis_url: str) -> None:
    """Forget the per-user quota windows (calls/quotas.py) kept in ``redis_url``.

    They outlive a test run by up to an hour and are keyed by user id, which
    a new test database hands out again from 1.
    """
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(QUOTA_KEYS):
            client.delete(key)


@pytest.fixture(scope="session", autouse=True)
def _fresh_quota_windows() -> None:
    clear_quota_windows(settings.REDIS_URL)


@pytest.fixture(scope="session", autouse=True)
def _no_kept_connections_in_the_test_process() -> Iterator[None]:
    """Calls run in this process (tests/pipeline/test_core.py) must not keep
    database connections on their threads (voiceproj/dbconn.py): the test
    database is dropped at the end, which an open connection blocks. The
    daphne and worker processes the tests start keep theirs, as in production."""
    with override_settings(DB_KEEP_CONNECTIONS_S=0):
        yield


@pytest.fixture(autouse=True)
def _full_rate_limit_budgets() -> None:
    """Rate-limit budgets live in the shared Redis cache: each test starts with full ones.

    Only the cache's own keys go (django-redis prefixes them), never the calls'.
    """
    cache.delete_pattern("*")


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
