"""WebSocket authentication and origin check for the voice socket.

``VoiceAuthStack(app)`` puts ``scope["user"]`` and ``scope["auth"]`` (how the
user was identified: ``"token"``, ``"session"``, ``"invalid_token"`` or
``None``) on every WebSocket scope. A JWT (``Authorization: Bearer`` header or
``?token=``) wins over the session cookie; a token that does not validate
leaves the caller anonymous even if a cookie is present, so a client always
learns that its token is bad (close 4401) instead of silently acting as
someone else.

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
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

Scope = dict[str, Any]


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def bearer_token(scope: Scope) -> str | None:
    """The JWT from ``Authorization: Bearer ...`` or the ``token`` query parameter."""
    authorization = header(scope, b"authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    tokens = query.get("token")
    return tokens[0] if tokens and tokens[0] else None


@database_sync_to_async
def user_for_token(raw: str):  # type: ignore[no-untyped-def]
    """The active user an access JWT names, or None when it does not validate."""
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]  # simplejwt annotates str as Token
    except TokenError:
        return None
    user_id = token.get(api_settings.USER_ID_CLAIM)
    user = (
        get_user_model()
        .objects.filter(**{api_settings.USER_ID_FIELD: user_id}, is_active=True)
        .first()
    )
    return user


class JWTAuthMiddleware:
    """Replace the cookie user with the token's user when a JWT is presented."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        scope = dict(scope)
        raw = bearer_token(scope)
        if raw is not None:
            user = await user_for_token(raw)
            scope["user"] = user or AnonymousUser()
            scope["auth"] = "token" if user else "invalid_token"
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
