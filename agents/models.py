"""Agent: an operator's persona that callers talk to."""

from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction

from voiceproj.phone import PhoneNumberField
from voiceproj.pipeline import AgentConfig

from .knowledge import index_terms, split_passages
from .routes import check_route_intents, normalize_routes, validate_routes
from .tools import tool_specs, validate_tools

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
# Few-shot examples steer the classifier (docs/engines.md, "Intent
# classification"): a handful per intent is what a small model's prompt holds.
EXAMPLES_PER_INTENT_MAX = 5
EXAMPLE_MAX = 150
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


def validate_examples(value: Any) -> None:
    """``{intent name: [caller utterance, ...]}``, bounded; the names are checked in ``clean``."""
    if not isinstance(value, dict):
        raise ValidationError("Examples are an object of intent names to lists of utterances.")
    if len(value) > INTENTS_MAX:
        raise ValidationError(f"Examples for at most {INTENTS_MAX} intents.")
    for name, utterances in value.items():
        if not isinstance(utterances, list) or not all(isinstance(u, str) for u in utterances):
            raise ValidationError(f"The examples of intent {name!r} must be a list of texts.")
        if len(utterances) > EXAMPLES_PER_INTENT_MAX:
            raise ValidationError(
                f"At most {EXAMPLES_PER_INTENT_MAX} examples per intent ({name!r} has "
                f"{len(utterances)})."
            )
        if "\x00" in name or any("\x00" in u for u in utterances):
            # PostgreSQL's jsonb cannot store it; the API's schemas check only flat text.
            raise ValidationError("Examples cannot contain NUL (\\u0000) characters.")
        for utterance in utterances:
            if not utterance.strip() or len(utterance) > EXAMPLE_MAX:
                raise ValidationError(
                    f"Examples of intent {name!r} are 1 to {EXAMPLE_MAX} characters."
                )


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
    examples = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_examples],
        help_text="Caller utterances per intent that show the classifier what each intent "
        "sounds like: {intent name: [utterance, ...]}.",
    )
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
    # HTTP tools and built-ins the responder may call (agents/tools.py,
    # docs/tools.md); header values are secrets, masked outside the database.
    tools = models.JSONField(default=list, blank=True, validators=[validate_tools])
    # Calls to this agent are recorded (calls/recording.py, docs/recordings.md).
    record_calls = models.BooleanField(
        default=False,
        help_text="Record every call: the caller and the agent on two channels of one WAV file.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Examples and routes may only name the agent's own intents (a renamed
        intent leaves them behind; both fields must be valid first)."""
        super().clean()
        if isinstance(self.examples, dict) and isinstance(self.intents, list):
            names = {i.get("name", "").strip() for i in self.intents if isinstance(i, dict)}
            unknown = sorted(set(self.examples) - names)
            if unknown:
                raise ValidationError(
                    {
                        "examples": f"Examples name intents the agent does not have: "
                        f"{', '.join(map(repr, unknown))}."
                    }
                )
        if isinstance(self.routes, dict) and isinstance(self.intents, list):
            route_names = [str(i.get("name")) for i in self.intents if isinstance(i, dict)]
            try:
                check_route_intents(self.routes, route_names)
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
        "examples",
        "routes",
        "classifier_model",
        "classifier_temperature",
        "responder_model",
        "responder_temperature",
        "voice",
    )

    def pipeline_config(self) -> AgentConfig:
        """The agent as the job's ``agent`` object: plain JSON for the Celery tasks.

        Tools travel as their specs only (name, description, parameters): URLs
        and header secrets stay in the database, and the tool runner reads them
        there when it makes the request.
        """
        config = {name: getattr(self, name) for name in self.PIPELINE_FIELDS}
        config["tools"] = tool_specs(self.tools)
        return cast(AgentConfig, config)

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
