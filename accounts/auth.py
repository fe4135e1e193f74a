"""JWT bearer authentication for the Ninja API (simplejwt access tokens)."""

from typing import Any

from django.http import HttpRequest
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from .models import User
from .tokens import token_user


class SignedInRequest(HttpRequest):
    """The request of a ``login_required`` view, whose user is never anonymous."""

    user: User


TOKEN_REVOKED = (
    "The token was revoked (password changed, logged out everywhere) "
    "or its user no longer exists or is inactive."
)


class JWTAuth(HttpBearer):
    """``Authorization: Bearer <access JWT>``; puts the user on ``request.user``."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        try:
            access = AccessToken(token)  # type: ignore[arg-type]  # simplejwt types str as Token
        except TokenError as exc:
            raise AuthenticationError(message="Access token is invalid or expired.") from exc
        user = token_user(access)
        if user is None:
            raise AuthenticationError(message=TOKEN_REVOKED)
        request.user = user
        return user


jwt_auth = JWTAuth()


def current_user(request: HttpRequest) -> Any:
    """The user ``JWTAuth`` authenticated (Ninja stores it on ``request.auth``)."""
    return request.auth  # type: ignore[attr-defined]
