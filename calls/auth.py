"""WebSocket authentication and origin check for the voice socket.

``VoiceAuthStack(app)`` puts ``scope["user"]`` and ``scope["auth"]`` (how the
user was identified: ``"token"``, ``"session"``, ``"ticket"``,
``"invalid_token"`` or ``None``) on every WebSocket scope. A JWT in the
``Authorization: Bearer`` header wins over the session cookie; a token that
does not validate leaves the caller anonymous even if a cookie is present, so
a client always learns that its token is bad (close 4401) instead of silently
acting as someone else.

A client that cannot send headers presents ``?ticket=`` (single-use, 30 s,
calls/tickets.py): the middleware only notes it, because the ticket is bound
to the session in the URL, which the consumer redeems it for
(``user_for_ticket``). A JWT in the URL (``?token=``) is refused: URLs end up
in proxy logs, and an access token there is usable for an hour.

The origin check follows Channels' ``AllowedHostsOriginValidator`` for
browsers, with one difference: Channels rejects a handshake that has no
``Origin`` header at all. Browsers always send ``Origin`` on WebSockets, so a
missing header means a non-browser client (SDK, phone bridge); it cannot carry
a victim's cookie cross-site, so it is let through and authenticates like any
other client. A present but foreign ``Origin`` is refused at the handshake
(HTTP 403), before any cookie is used.
"""

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from accounts.tokens import user_for_access_token

from .tickets import VOICE_TICKET

Scope = dict[str, Any]


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def bearer_token(scope: Scope) -> str | None:
    """The JWT from ``Authorization: Bearer ...``."""
    authorization = header(scope, b"authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None


def query_parameter(scope: Scope, name: str) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get(name)
    return values[0] if values else None


user_for_token = database_sync_to_async(user_for_access_token)


async def user_for_ticket(ticket: str, session_id: str) -> Any:
    """The user a voice ticket for ``session_id`` names, on its first use; else None."""
    claims = await VOICE_TICKET.redeem(ticket, session_id)
    if claims is None or not isinstance(claims.get("user"), int):
        return None
    return await database_sync_to_async(
        get_user_model().objects.filter(pk=claims["user"], is_active=True).first
    )()


class JWTAuthMiddleware:
    """Replace the cookie user with the token's user when a JWT is presented."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        scope = dict(scope)
        raw = bearer_token(scope)
        ticket = query_parameter(scope, "ticket")
        if raw is not None:
            user = await user_for_token(raw)
            scope["user"] = user or AnonymousUser()
            scope["auth"] = "token" if user else "invalid_token"
        elif ticket is not None:
            scope["user"], scope["auth"], scope["ticket"] = AnonymousUser(), "ticket", ticket
        elif query_parameter(scope, "token") is not None:
            scope["user"], scope["auth"] = AnonymousUser(), "invalid_token"
        else:
            user = scope.get("user")
            scope["auth"] = "session" if user is not None and user.is_authenticated else None
        return await self.app(scope, receive, send)


class BrowserOriginValidator(OriginValidator):
    """ALLOWED_HOSTS origin check that admits clients sending no Origin at all."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if header(scope, b"origin") is None:
            return await self.application(scope, receive, send)
        return await super().__call__(scope, receive, send)


def allowed_origins() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return hosts


def VoiceAuthStack(app: Any) -> Any:  # noqa: N802 - named like Channels' stacks
    """Origin check → session cookie auth → JWT auth → ``app``."""
    return BrowserOriginValidator(AuthMiddlewareStack(JWTAuthMiddleware(app)), allowed_origins())
