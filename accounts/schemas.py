"""Request and response bodies of the ``/api/auth`` endpoints."""

from datetime import datetime

from ninja import Schema
from pydantic import Field

from voiceproj.errors import InputSchema


class RegisterIn(InputSchema):
    username: str = Field(min_length=1, max_length=150)
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=128)


class LoginIn(InputSchema):
    username: str = Field(max_length=254, description="Username or email address.")
    password: str = Field(max_length=4096)
    # A TOTP code has 6 digits and a recovery code 8; allauth ignores spaces and
    # dashes, so 32 leaves room for those and refuses anything else unread.
    code: str | None = Field(
        default=None,
        max_length=32,
        description="Two-factor code (authenticator app or unused recovery code); "
        "required when the account has two-factor authentication.",
    )


class RefreshIn(InputSchema):
    refresh: str = Field(max_length=4096)


class TokenPairOut(Schema):
    access: str
    refresh: str


class UserOut(Schema):
    id: int
    username: str
    email: str
    date_joined: datetime
