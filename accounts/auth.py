"""JWT bearer authentication for the Ninja API (simplejwt access tokens)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from .models import User


class SignedInRequest(HttpRequest):
    """The request of a ``login_required`` view, whose user is never anonymous."""

    user: User


class JWTAuth(HttpBearer):
    """``Authorization: Bearer <access JWT>``; puts the user on ``request.user``."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        try:
            access = AccessToken(token)  # type: ignore[arg-type]  # simplejwt types str as Token
            user_id = access[api_settings.USER_ID_CLAIM]
        except (TokenError, KeyError) as exc:
            raise AuthenticationError(message="Access token is invalid or expired.") from exc
        user = (
            get_user_model()
            .objects.filter(**{api_settings.USER_ID_FIELD: user_id}, is_active=True)
            .first()
        )
        if user is None:
            raise AuthenticationError(message="The token's user no longer exists or is inactive.")
        request.user = user
        return user


jwt_auth = JWTAuth()


def current_user(request: HttpRequest) -> Any:
    """The user ``JWTAuth`` authenticated (Ninja stores it on ``request.auth``)."""
    return request.auth  # type: ignore[attr-defined]
