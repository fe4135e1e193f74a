"""``manage.py seed_demo``: the demo operator (demo / demo-pass-1234) and a demo agent.

Idempotent: running it again restores the demo password and leaves one demo
agent, so ``make run DEMO=1`` can be repeated safely.
"""

from typing import Any

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from agents.models import Agent

USERNAME = "demo"
PASSWORD = "demo-pass-1234"
EMAIL = "demo@example.com"
AGENT_NAME = "Demo receptionist"
AGENT = {
    "description": "Greets callers, answers questions about the platform, says goodbye.",
    "system_prompt": (
        "You are the friendly receptionist of a voice-agent platform demo. Answer in one "
        "or two short spoken sentences; no lists, no markdown."
    ),
    "greeting": "Hello! You are talking to the demo receptionist. How can I help you today?",
}


class Command(BaseCommand):
    help = "Create (or restore) the demo operator and the demo agent."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user, created = User.objects.get_or_create(
            username=USERNAME, defaults={"email": EMAIL, "is_staff": True, "is_superuser": True}
        )
        user.set_password(PASSWORD)
        user.is_active = True
        user.save()
        # A verified address so allauth's email login and password reset work at once.
        EmailAddress.objects.update_or_create(
            user=user, email=user.email, defaults={"verified": True, "primary": True}
        )
        agent, agent_created = Agent.objects.get_or_create(
            owner=user, name=AGENT_NAME, defaults=AGENT
        )
        self.stdout.write(
            f"{'Created' if created else 'Kept'} operator {USERNAME!r} (password {PASSWORD!r}, "
            f"admin access); {'created' if agent_created else 'kept'} agent #{agent.pk} "
            f"{agent.name!r}."
        )
