"""``/api/auth``: register, JWT login / refresh (rotating) / logout / logout-all, and me."""

from collections.abc import Iterable
from typing import Any, cast

from allauth.account import app_settings as allauth_settings
from allauth.account.adapter import get_adapter
from allauth.account.models import EmailAddress
from allauth.account.utils import has_verified_email
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import update_last_login
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Router, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.throttling import AnonRateThrottle
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken

from voiceproj.errors import (
    CodedAuthenticationError,
    CodedErrorOut,
    ErrorOut,
    FieldError,
    ValidationErrorOut,
    field_error,
)

from .auth import current_user, jwt_auth
from .mfa import require_second_factor
from .schemas import LoginIn, RefreshIn, RegisterIn, TokenPairOut, UserOut
from .tokens import revoke_all_tokens, token_pair, token_user


class AuthThrottle(AnonRateThrottle):
    """One budget per client address shared by all unauthenticated auth endpoints."""

    scope = "api_auth"

    def __init__(self) -> None:
        super().__init__(rate=settings.API_AUTH_RATE)

    def allow_request(self, request: HttpRequest) -> bool:
        # Read per request, not at import, so overridden settings (tests) take effect.
        self.num_requests, self.duration = self.parse_rate(settings.API_AUTH_RATE)
        return super().allow_request(request)


router = Router(tags=["auth"], throttle=[AuthThrottle()])
User = get_user_model()

REFRESH_REJECTED = "Refresh token is invalid, expired or already used."


def _validated_registration(payload: RegisterIn) -> dict[str, str]:
    """Field-level checks; every failing field is reported at once."""
    username, email = payload.username.strip(), payload.email.strip()
    errors: dict[str, str | Iterable[str]] = {}
    try:
        User.username_validator(username)
    except ValidationError as exc:
        errors["username"] = exc.messages
    else:
        if User.objects.filter(username__iexact=username).exists():
            errors["username"] = "A user with that username already exists."
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = "Enter a valid email address."
    else:
        if User.objects.filter(email__iexact=email).exists():
            errors["email"] = "A user with that email already exists."
    try:
        validate_password(payload.password, User(username=username, email=email))
    except ValidationError as exc:
        errors["password"] = exc.messages
    if errors:
        raise FieldError(errors)
    return {"username": username, "email": email}


SIGNUP_CLOSED = "Sign-up is closed on this server; ask its administrator for an account."


@router.post(
    "/register", response={201: UserOut, 403: ErrorOut, 422: ValidationErrorOut}, auth=None
)
def register(request: HttpRequest, payload: RegisterIn):  # type: ignore[no-untyped-def]
    """Create an account; username and email are unique (email case-insensitively).

    A confirmation link is emailed unless ``ACCOUNT_EMAIL_VERIFICATION=none``.
    403 while sign-up is closed (``ALLOW_SIGNUP=false``), as the web sign-up is.
    """
    if not get_adapter(request).is_open_for_signup(request):
        raise HttpError(403, SIGNUP_CLOSED)
    fields = _validated_registration(payload)
    try:
        with transaction.atomic():
            user = User.objects.create_user(password=payload.password, **fields)
            # The same address record allauth's web sign-up makes, so web login,
            # password reset and email verification treat both users alike.
            address = EmailAddress.objects.create(
                user=user, email=fields["email"].lower(), primary=True, verified=False
            )
    except IntegrityError as exc:  # a concurrent registration won the race
        raise field_error("username", "A user with that username or email already exists.") from exc
    if allauth_settings.EMAIL_VERIFICATION != allauth_settings.EmailVerificationMethod.NONE:
        address.send_confirmation(request, signup=True)
    return Status(201, user)


@router.post(
    "/login",
    response={200: TokenPairOut, 401: CodedErrorOut, 403: ErrorOut, 429: ErrorOut},
    auth=None,
)
def login(request: HttpRequest, payload: LoginIn):  # type: ignore[no-untyped-def]
    """Exchange a username (or email) and password for an access + refresh JWT pair.

    An account with two-factor authentication also needs ``code`` (authenticator
    app or unused recovery code): without one the answer is 401 with
    ``"code": "mfa_required"``, with a wrong or spent one 401 ``mfa_invalid``,
    and after 5 wrong codes 429 for a few minutes. With
    ``ACCOUNT_EMAIL_VERIFICATION=mandatory`` an unconfirmed address answers 403.
    """
    user = authenticate(request, username=payload.username, password=payload.password)
    if user is None or not user.is_active:
        raise CodedAuthenticationError("Invalid username or password.", code="invalid_credentials")
    require_second_factor(request, user, payload.code)
    mandatory = allauth_settings.EmailVerificationMethod.MANDATORY
    if mandatory == allauth_settings.EMAIL_VERIFICATION and not has_verified_email(user):
        raise HttpError(403, "Confirm your email address first: follow the link we emailed you.")
    if api_settings.UPDATE_LAST_LOGIN:
        update_last_login(User, user)
    return token_pair(user)


def _spend(raw: str) -> RefreshToken:
    """Validate a refresh token and blacklist it; each one works exactly once."""
    try:
        token = RefreshToken(raw)  # type: ignore[arg-type]  # checks expiry and blacklist
        # simplejwt annotates one object but returns get_or_create's (object, created).
        _, created = cast(tuple[Any, bool], token.blacklist())
    except TokenError as exc:
        raise AuthenticationError(message=REFRESH_REJECTED) from exc
    if not created:  # a concurrent request spent it between the check and here
        raise AuthenticationError(message=REFRESH_REJECTED)
    return token


@router.post("/refresh", response={200: TokenPairOut, 401: ErrorOut}, auth=None)
def refresh(request: HttpRequest, payload: RefreshIn):  # type: ignore[no-untyped-def]
    """Rotate: the refresh token is blacklisted and a new pair is returned."""
    token = _spend(payload.refresh)
    user = token_user(token)
    if user is None:
        raise AuthenticationError(message=REFRESH_REJECTED)
    return token_pair(user)


@router.post("/logout", response={204: None, 401: ErrorOut}, auth=None)
def logout(request: HttpRequest, payload: RefreshIn):  # type: ignore[no-untyped-def]
    """Blacklist the refresh token; access tokens expire on their own (60 min)."""
    _spend(payload.refresh)
    return Status(204, None)


@router.post("/logout-all", response={204: None, 401: ErrorOut}, auth=jwt_auth)
def logout_all(request: HttpRequest):  # type: ignore[no-untyped-def]
    """Log out everywhere: every access and refresh token and web session of the user ends."""
    revoke_all_tokens(current_user(request))
    return Status(204, None)


@router.get("/me", response=UserOut, auth=jwt_auth)
def me(request: HttpRequest):  # type: ignore[no-untyped-def]
    return current_user(request)
