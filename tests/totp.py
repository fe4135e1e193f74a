"""The authenticator app of the two-factor tests: pyotp, independent of allauth's TOTP code."""

import time

import pyotp

# allauth accepts only the current 30-second period's code (MFA_TOTP_TOLERANCE 0),
# so a test that needs a code for a few seconds must not start at a period's end.
SECONDS_NEEDED = 5.0


def current_code(secret: str) -> str:
    """The app's code now, after waiting out a period that ends within ``SECONDS_NEEDED``."""
    totp = pyotp.TOTP(secret)
    left = totp.interval - time.time() % totp.interval
    if left < SECONDS_NEEDED:
        time.sleep(left + 0.1)
    return totp.now()


def other_code(code: str) -> str:
    """Six digits that are not ``code``."""
    return f"{(int(code) + 1) % 1_000_000:06d}"
