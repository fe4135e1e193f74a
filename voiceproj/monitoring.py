"""Who may read the platform's internals: ``/api/health/ready`` and ``/metrics``.

Worker counts, queue depths and dependency states tell an attacker what to
hit, and the readiness check broadcasts to every worker, so neither is public:
a monitoring system presents ``Authorization: Bearer <MONITORING_TOKEN>``; a
staff user presents their access JWT or their admin session. The public
liveness answer (``/api/health``) needs nothing.
"""

import hmac
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from accounts.tokens import user_for_access_token


def bearer_credentials(request: HttpRequest) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def is_monitoring_token(raw: str) -> bool:
    """Constant-time match with MONITORING_TOKEN; never matches while it is unset."""
    expected = settings.MONITORING_TOKEN
    return bool(expected) and hmac.compare_digest(raw.encode(), expected.encode())


def token_may_monitor(raw: str) -> bool:
    """The monitoring token, or a staff user's valid access JWT."""
    if is_monitoring_token(raw):
        return True
    user = user_for_access_token(raw)
    return bool(user is not None and user.is_staff)


def is_staff_session(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def may_monitor(request: HttpRequest) -> bool:
    """A bearer credential that may monitor, or else a staff user's session."""
    raw = bearer_credentials(request)
    return is_staff_session(request) if raw is None else token_may_monitor(raw)


class MonitoringAuth(HttpBearer):
    """Ninja auth for monitoring endpoints: anyone else gets 401."""

    def __call__(self, request: HttpRequest) -> Any:
        if bearer_credentials(request) is None:
            return "staff" if is_staff_session(request) else None
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return "monitoring" if token_may_monitor(token) else None
