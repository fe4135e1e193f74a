"""API test settings: a generous auth rate limit and a fresh throttle cache per test."""

from collections.abc import Iterator

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _relaxed_auth_throttle(settings) -> Iterator[None]:
    """Tests send many logins from one address; the throttle has its own test."""
    settings.API_AUTH_RATE = "10000/m"
    cache.clear()
    yield
    cache.clear()
