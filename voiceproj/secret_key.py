"""The ``SECRET_KEY`` check run when settings load.

The key signs sessions, password-reset links and every JWT (simplejwt signs
with it), so whoever knows it can mint an access token for any user. Outside
DEBUG a missing, short or well-known key stops the process at start-up, with a
message that says how to make a good one, rather than serving forgeable tokens.
"""

from django.core.exceptions import ImproperlyConfigured

# Django's own `check --deploy` bar (security.W009): 50 characters, 5 distinct.
MIN_LENGTH = 50
MIN_UNIQUE_CHARACTERS = 5
# Keys published in this repository's history and docs; Django's template keys
# all start with django-insecure, as the development key below does.
KNOWN_PLACEHOLDERS = frozenset(
    {
        "change-me-in-production",
        "changeme",
        "change-me",
        "secret",
    }
)
DEVELOPMENT_KEY = "django-insecure-local-development-key-change-me"
HOW_TO = (
    "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))' "
    "and set it in the environment or .env (docs/security.md)."
)


def validated_secret_key(key: str, debug: bool) -> str:
    """``key`` if it is fit to sign tokens; the development key under DEBUG when unset."""
    if not key:
        if debug:
            return DEVELOPMENT_KEY
        raise ImproperlyConfigured(f"SECRET_KEY must be set when DEBUG is off. {HOW_TO}")
    if debug:
        return key
    if key in KNOWN_PLACEHOLDERS or key.startswith("django-insecure"):
        raise ImproperlyConfigured(f"SECRET_KEY is a published placeholder. {HOW_TO}")
    if len(key) < MIN_LENGTH or len(set(key)) < MIN_UNIQUE_CHARACTERS:
        raise ImproperlyConfigured(
            f"SECRET_KEY is too weak: it needs at least {MIN_LENGTH} characters and "
            f"{MIN_UNIQUE_CHARACTERS} different ones. {HOW_TO}"
        )
    return key
