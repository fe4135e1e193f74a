"""Minting and checking the API's JWTs, and revoking all of a user's at once.

simplejwt signs the tokens; two claims tie each one to the state of its user:

* ``hash_password`` (simplejwt's ``CHECK_REVOKE_TOKEN``): a hash of the stored
  password hash, so changing or resetting the password invalidates every
  token minted before;
* ``gen``: the user's ``token_generation``, which "log out everywhere" bumps,
  so every token and web session of the user ends without a password change.

Both are checked on every use of an access token (API and WebSocket) and on
every refresh.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import F
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from .models import User

GENERATION_CLAIM = "gen"


def token_pair(user: User) -> dict[str, str]:
    """A fresh access + refresh pair for ``user``."""
    refresh = RefreshToken.for_user(user)
    refresh[GENERATION_CLAIM] = user.token_generation
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def token_user(token: Token | dict[str, Any]) -> Any:
    """The active user ``token`` names, or None when it was revoked since it was minted."""
    user = (
        get_user_model()
        .objects.filter(
            **{api_settings.USER_ID_FIELD: token.get(api_settings.USER_ID_CLAIM)}, is_active=True
        )
        .first()
    )
    if user is None:
        return None
    if token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
        return None
    # Tokens minted without the claim count as generation 0, the state of a
    # user who never logged out everywhere.
    if token.get(GENERATION_CLAIM, 0) != user.token_generation:
        return None
    return user


def user_for_access_token(raw: str) -> Any:
    """The active user a raw access JWT names, or None when it does not validate or was revoked."""
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]  # simplejwt annotates str as Token
    except TokenError:
        return None
    return token_user(token)


def revoke_all_tokens(user: User) -> None:
    """End every JWT and web session of ``user`` ("log out everywhere")."""
    User.objects.filter(pk=user.pk).update(token_generation=F("token_generation") + 1)
    user.refresh_from_db(fields=["token_generation"])
