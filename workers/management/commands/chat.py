"""``manage.py chat --agent ID "text"``: one typed turn through the agent's LLM engine.

Prints the classified intent, then the reply as it streams.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.models import Agent
from workers.engines import EngineError, get_llm

# Matches a short spoken answer; the pipeline uses its own limit.
MAX_TOKENS = 200


class Command(BaseCommand):
    help = "Classify and answer one message as an agent would (VOICE_LLM)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--agent", required=True, help="agent id")
        parser.add_argument("text")

    def handle(self, *args: Any, agent: str, text: str, **options: Any) -> None:
        try:
            persona = Agent.objects.get(pk=int(agent))
        except (ValueError, Agent.DoesNotExist) as exc:
            raise CommandError(f"No agent with id {agent!r}.") from exc
        llm = get_llm()
        messages = [
            {"role": "system", "content": persona.system_prompt},
            {"role": "user", "content": text},
        ]
        try:
            intent = llm.classify(
                text, persona.intents, persona.classifier_model, persona.classifier_temperature
            )
            self.stdout.write(f"intent: {intent}")
            self.stdout.write("reply: ", ending="")
            for delta in llm.stream(
                messages, persona.responder_model, persona.responder_temperature, MAX_TOKENS
            ):
                self.stdout.write(delta, ending="")
                self.stdout.flush()
        except EngineError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write("")
