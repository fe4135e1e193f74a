"""Phone numbers in E.164 form (``+15551234567``), the only form Twilio accepts.

One rule for the model fields (agents' numbers, sessions' caller numbers), the
API's request bodies and the webhooks: ``+``, a country code that does not
start with 0, and 8 to 15 digits in all. People paste numbers as their phone
shows them, so the spaces, dashes, dots and brackets of ``+1 (555) 123-4567``
are dropped before the check.
"""

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

E164 = re.compile(r"\+[1-9]\d{7,14}")
# "+" and at most 15 digits.
E164_MAX_LENGTH = 16
# What an input may hold before the separators are dropped: "+44 (20) 7946-0958".
PHONE_INPUT_MAX_LENGTH = 32
E164_MESSAGE = (
    "Enter the number in E.164 form: + and the country code, 8 to 15 digits in all, "
    "e.g. +15551234567."
)
_SEPARATORS = re.compile(r"[\s\-.()]")


def normalize_phone_number(value: str) -> str:
    """``value`` without the separators people type between digits."""
    return _SEPARATORS.sub("", value)


def is_e164(value: str) -> bool:
    return E164.fullmatch(value) is not None


def parse_e164(value: str) -> str:
    """The normalized number, or ``ValueError`` (for Pydantic schemas)."""
    number = normalize_phone_number(value)
    if not is_e164(number):
        raise ValueError(E164_MESSAGE)
    return number


def validate_e164(value: str) -> None:
    """Django validator of an already normalized number."""
    if not is_e164(value):
        raise ValidationError(E164_MESSAGE, code="invalid_phone_number")


class PhoneNumberField(models.CharField):
    """An E.164 number; cleaning drops the separators before the check."""

    default_validators = [validate_e164]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", E164_MAX_LENGTH)
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        return normalize_phone_number(value) if isinstance(value, str) else value

    def formfield(self, **kwargs: Any) -> Any:
        """A form input long enough for the number as typed, separators included."""
        return super().formfield(**{"max_length": PHONE_INPUT_MAX_LENGTH, **kwargs})
