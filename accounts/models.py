"""The platform's user: every agent and call session belongs to one."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower
from django.utils.crypto import salted_hmac


class User(AbstractUser):
    """A custom user from the first migration, so the model can grow later."""

    email = models.EmailField("email address", unique=True)
    # Bumped by "log out everywhere": ends every JWT (accounts/tokens.py) and
    # every web session (the session auth hash below) of the user.
    token_generation = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["id"]
        # Mail servers treat addresses case-insensitively, so must we: one
        # account per mailbox however the address is typed.
        constraints = [models.UniqueConstraint(Lower("email"), name="unique_user_email_ci")]

    def __str__(self) -> str:
        return self.username

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        """Django's session check, which already covers the password, plus the token generation.

        Django compares this hash with the one stored in each session (for
        SECRET_KEY_FALLBACKS too, hence the private override), so bumping the
        generation logs out every browser as a password change would.
        """
        return salted_hmac(
            "accounts.User.session_auth_hash",
            f"{self.password}:{self.token_generation}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()
