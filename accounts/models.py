"""The platform's user: every agent and call session belongs to one."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


class User(AbstractUser):
    """A custom user from the first migration, so the model can grow later."""

    email = models.EmailField("email address", unique=True)

    class Meta:
        ordering = ["id"]
        # Mail servers treat addresses case-insensitively, so must we: one
        # account per mailbox however the address is typed.
        constraints = [models.UniqueConstraint(Lower("email"), name="unique_user_email_ci")]

    def __str__(self) -> str:
        return self.username
