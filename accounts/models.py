"""The platform's user: every agent and call session belongs to one."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A custom user from the first migration, so the model can grow later."""

    email = models.EmailField("email address", unique=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.username
