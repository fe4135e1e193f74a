"""``ACCOUNT_EMAIL_VERIFICATION``: mandatory in production, optional while developing.

Settings are read once per process, so each case imports them in a fresh
interpreter with the environment a deployment would have.
"""

import secrets

import pytest

from tests.fresh_python import printed


def email_verification(**env: str) -> str:
    """The value ``voiceproj.settings`` computes with ``env`` in the environment."""
    return printed(
        "from voiceproj import settings; print(settings.ACCOUNT_EMAIL_VERIFICATION)",
        unset={"DEBUG", "ACCOUNT_EMAIL_VERIFICATION", "SECRET_KEY"},
        **env,
    )


def production_key() -> str:
    return secrets.token_urlsafe(50)  # 67 random characters, as Django's check wants 50+


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "false"}, "mandatory"),
        ({"DEBUG": "true"}, "optional"),
        ({"DEBUG": "false", "ACCOUNT_EMAIL_VERIFICATION": "optional"}, "optional"),
        ({"DEBUG": "true", "ACCOUNT_EMAIL_VERIFICATION": "mandatory"}, "mandatory"),
    ],
)
def test_email_verification_default_follows_debug(env: dict[str, str], expected: str) -> None:
    assert email_verification(SECRET_KEY=production_key(), **env) == expected
