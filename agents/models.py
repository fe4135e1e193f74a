"""Agent: an operator's persona that callers talk to."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction

from voiceproj.phone import PhoneNumberField

from .knowledge import index_terms, split_passages
from .routes import check_route_intents, normalize_routes, validate_routes

DEFAULT_INTENTS: list[dict[str, str]] = [
    {"name": "greeting", "description": "The caller says hello or opens the conversation."},
    {"name": "question", "description": "The caller asks for information."},
    {"name": "command", "description": "The caller asks the agent to do something."},
    {"name": "farewell", "description": "The caller says goodbye or wants to end the call."},
    {"name": "clarification", "description": "The caller asks to repeat or explain."},
    {"name": "other", "description": "Anything else."},
]
DEFAULT_CLASSIFIER_MODEL = "qwen2.5:1.5b"
DEFAULT_RESPONDER_MODEL = "llama3.2:1b"
DEFAULT_VOICE = "en_US-joe-medium"

NAME_MAX = 100
INTENT_NAME_MAX = 40
INTENTS_MAX = 20
# A description is a hint to the classifier, one sentence or two; every
# description goes into every classification prompt, so it must stay short.
INTENT_DESCRIPTION_MAX = 500
INTENT_KEYS = frozenset({"name", "description"})
temperature_validators = [MinValueValidator(0.0), MaxValueValidator(2.0)]


def default_intents() -> list[dict[str, str]]:
    return [dict(intent) for intent in DEFAULT_INTENTS]


def validate_intents(value: Any) -> None:
    """At least one intent, each a ``{name, description}`` with a unique name."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one intent.")
    if len(value) > INTENTS_MAX:
        raise ValidationError(f"At most {INTENTS_MAX} intents.")
    seen: set[str] = set()
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not item.keys() <= INTENT_KEYS
        ):
            raise ValidationError("Each intent is an object with a name and a description.")
        name = item["name"].strip()
        if not name or len(name) > INTENT_NAME_MAX:
            raise ValidationError(f"Intent names are 1 to {INTENT_NAME_MAX} characters.")
        description = item.get("description", "")
        if not isinstance(description, str):
            raise ValidationError(f"The description of intent {name!r} must be text.")
        if len(description) > INTENT_DESCRIPTION_MAX:
            raise ValidationError(
                f"The description of intent {name!r} is longer than "
                f"{INTENT_DESCRIPTION_MAX} characters."
            )
        if name in seen:
            raise ValidationError(f"Intent names must be unique: {name!r} appears twice.")
        seen.add(name)


class RoutesField(models.JSONField):
    """An agent's routes; cleaning normalizes transfer numbers before the checks."""

    def to_python(self, value: Any) -> Any:
        return normalize_routes(super().to_python(value))


def validate_not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("This field cannot be blank.")


class Agent(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agents"
    )
    name = models.CharField(max_length=NAME_MAX, validators=[validate_not_blank])
    description = models.TextField(max_length=2000, blank=True)
    system_prompt = models.TextField(
        max_length=8000, default="You are a helpful, friendly voice assistant."
    )
    greeting = models.TextField(max_length=500, blank=True)
    language = models.CharField(max_length=16, default="en")
    intents = models.JSONField(default=default_intents, validators=[validate_intents])
    # What the dialog does per intent (agents/routes.py); empty: answer every
    # intent, end the call on a farewell.
    routes = RoutesField(default=dict, blank=True, validators=[validate_routes])
    classifier_model = models.CharField(
        max_length=100, default=DEFAULT_CLASSIFIER_MODEL, validators=[validate_not_blank]
    )
    classifier_temperature = models.FloatField(default=0.3, validators=temperature_validators)
    responder_model = models.CharField(
        max_length=100, default=DEFAULT_RESPONDER_MODEL, validators=[validate_not_blank]
    )
    responder_temperature = models.FloatField(default=0.7, validators=temperature_validators)
    voice = models.CharField(max_length=100, default=DEFAULT_VOICE, validators=[validate_not_blank])
    is_active = models.BooleanField(default=True)
    # The Twilio number whose calls this agent answers (docs/telephony.md). NULL
    # when there is none, so agents without a number never collide on uniqueness.
    phone_number = PhoneNumberField(
        null=True,
        blank=True,
        unique=True,
        help_text="E.164, e.g. +15551234567: calls to this Twilio number reach this agent.",
        error_messages={"unique": "Another agent already answers this phone number."},
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Routes may only name the agent's own intents (both fields must be valid first)."""
        super().clean()
        if isinstance(self.routes, dict) and isinstance(self.intents, list):
            names = [str(i.get("name")) for i in self.intents if isinstance(i, dict)]
            try:
                check_route_intents(self.routes, names)
            except ValidationError as exc:
                raise ValidationError({"routes": exc}) from exc

    # What the pipeline's workers need of an agent, sent with every job
    # (docs/pipeline.md); the rest (owner, description, ...) stays here.
    PIPELINE_FIELDS = (
        "id",
        "name",
        "system_prompt",
        "greeting",
        "language",
        "intents",
        "routes",
        "classifier_model",
        "classifier_temperature",
        "responder_model",
        "responder_temperature",
        "voice",
    )

    def pipeline_config(self) -> dict[str, Any]:
        """The agent as the job's ``agent`` object: plain JSON for the Celery tasks."""
        return {name: getattr(self, name) for name in self.PIPELINE_FIELDS}

    @property
    def intent_names(self) -> list[str]:
        return [intent["name"] for intent in self.intents]


KNOWLEDGE_TITLE_MAX = 200
# About two pages of text: an FAQ answer or a policy, not a manual. Bounded so
# that ranking all of an agent's passages per turn stays fast.
KNOWLEDGE_CONTENT_MAX = 10_000
KNOWLEDGE_ENTRIES_MAX = 100


class KnowledgeEntry(models.Model):
    """A piece of an agent's knowledge; its passages are what retrieval ranks."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="knowledge")
    title = models.CharField(max_length=KNOWLEDGE_TITLE_MAX, validators=[validate_not_blank])
    content = models.TextField(max_length=KNOWLEDGE_CONTENT_MAX, validators=[validate_not_blank])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent", "id"]
        verbose_name_plural = "knowledge entries"

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save the entry and replace its passages, in one transaction: whatever
        writes an entry (API, builder page, admin) keeps retrieval in step."""
        with transaction.atomic():
            super().save(*args, **kwargs)
            self.passages.all().delete()
            # The title counts as part of each passage: "Opening hours" is
            # often the only place a question's key word appears.
            KnowledgePassage.objects.bulk_create(
                KnowledgePassage(
                    entry=self, index=i, text=text, terms=index_terms(f"{self.title}. {text}")
                )
                for i, text in enumerate(split_passages(self.content))
            )

    def clean(self) -> None:
        super().clean()
        others = KnowledgeEntry.objects.filter(agent_id=self.agent_id).exclude(pk=self.pk)
        if self.agent_id and others.count() >= KNOWLEDGE_ENTRIES_MAX:
            raise ValidationError(
                f"An agent holds at most {KNOWLEDGE_ENTRIES_MAX} knowledge entries.",
                code="too_many_entries",
            )


class KnowledgePassage(models.Model):
    """A stored passage of an entry's content (agents/knowledge.py splits and ranks them)."""

    entry = models.ForeignKey(KnowledgeEntry, on_delete=models.CASCADE, related_name="passages")
    index = models.PositiveIntegerField()
    text = models.TextField()
    terms = models.TextField()  # what retrieval ranks (agents.knowledge.index_terms)

    class Meta:
        ordering = ["entry", "index"]
        constraints = [
            models.UniqueConstraint(fields=["entry", "index"], name="unique_passage_index")
        ]

    def __str__(self) -> str:
        return f"{self.entry} #{self.index}"
