"""Request and response bodies of ``/api/agents``.

Lengths and ranges repeat the model's limits so the OpenAPI schema states them;
``Agent.full_clean()`` stays the single authority (unique intent names, blank
model names), run on every write.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StringConstraints

from voiceproj.errors import InputSchema
from voiceproj.phone import PHONE_INPUT_MAX_LENGTH, parse_e164

from .models import (
    DEFAULT_CLASSIFIER_MODEL,
    DEFAULT_RESPONDER_MODEL,
    DEFAULT_VOICE,
    EXAMPLE_MAX,
    EXAMPLES_PER_INTENT_MAX,
    INTENT_DESCRIPTION_MAX,
    INTENT_NAME_MAX,
    INTENTS_MAX,
    KNOWLEDGE_CONTENT_MAX,
    KNOWLEDGE_TITLE_MAX,
    NAME_MAX,
    default_intents,
)
from .routes import ROUTE_TEXT_MAX, TOOL_NAME_MAX
from .tools import (
    HEADER_VALUE_MAX,
    SECRET_MASK,
    TIMEOUT_MAX_S,
    TIMEOUT_MIN_S,
    TOOL_DESCRIPTION_MAX,
    TOOL_HEADERS_MAX,
    TOOL_URL_MAX,
    TOOLS_MAX,
    masked_tools,
)


def blank_to_none(value: object) -> object:
    """An empty or all-blank number means "no number" (stored as NULL, never a duplicate)."""
    return None if isinstance(value, str) and not value.strip() else value


# Checked and normalized by the model (E.164, unique); the schema only bounds it.
PhoneNumberIn = Annotated[
    Annotated[str, StringConstraints(max_length=PHONE_INPUT_MAX_LENGTH)] | None,
    BeforeValidator(blank_to_none),
    Field(
        description="E.164 Twilio number this agent answers, e.g. +15551234567; "
        "spaces, dashes, dots and brackets are dropped. Empty or null: none.",
        examples=["+15551234567"],
    ),
]


class IntentSchema(InputSchema):
    name: str = Field(min_length=1, max_length=INTENT_NAME_MAX)
    description: str = Field("", max_length=INTENT_DESCRIPTION_MAX)


class ToolSchema(InputSchema):
    """An HTTP tool, or a built-in named alone (docs/tools.md); the model's
    validator checks the combination, the schema only bounds each field."""

    name: str = Field(min_length=1, max_length=48, examples=["check_order"])
    description: str | None = Field(None, max_length=TOOL_DESCRIPTION_MAX)
    url: str | None = Field(
        None, max_length=TOOL_URL_MAX, examples=["https://shop.example/api/orders"]
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] | None = None
    parameters: dict[str, Any] | None = Field(
        None,
        description="JSON Schema of the arguments, an object schema.",
        examples=[{"type": "object", "properties": {"order_id": {"type": "string"}}}],
    )
    headers: dict[str, Annotated[str, StringConstraints(max_length=HEADER_VALUE_MAX)]] | None = (
        Field(
            None,
            max_length=TOOL_HEADERS_MAX,
            description=f"Secret values: read back as {SECRET_MASK!r}; sending "
            f"{SECRET_MASK!r} back keeps the stored value.",
        )
    )
    timeout_s: float | None = Field(None, ge=TIMEOUT_MIN_S, le=TIMEOUT_MAX_S)
    to: str | None = Field(None, max_length=32, description="transfer_call only: E.164 number.")


ToolsIn = Annotated[list[ToolSchema], Field(max_length=TOOLS_MAX)]

# {intent name: [caller utterance, ...]}; the model checks the names against the intents.
Examples = dict[
    Annotated[str, StringConstraints(min_length=1, max_length=INTENT_NAME_MAX)],
    Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=EXAMPLE_MAX)]],
        Field(max_length=EXAMPLES_PER_INTENT_MAX),
    ],
]
EXAMPLES_DESCRIPTION = (
    "Caller utterances per intent name that show the classifier what the intent sounds "
    f"like (at most {EXAMPLES_PER_INTENT_MAX} per intent); keys must be intents of the agent."
)
# --- routes: one schema per action, told apart by "action", so a 422 names the
# exact field (routes.<intent>.say.text); the model checks that the intent exists.

RouteText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=ROUTE_TEXT_MAX)
]


class AnswerRoute(InputSchema):
    """The responder answers (what an intent without a route does)."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["answer"]


class SayRoute(InputSchema):
    """Say a fixed line."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["say"]
    text: RouteText


class KnowledgeRoute(InputSchema):
    """Answer from the agent's knowledge, or say that the answer is not known."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["knowledge"]


class ToolRoute(InputSchema):
    """Run the named tool."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["tool"]
    tool: str = Field(min_length=1, max_length=TOOL_NAME_MAX)


class TransferRoute(InputSchema):
    """Hand the call over to a phone number (web calls get a ``handoff`` event)."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["transfer"]
    to: Annotated[
        str, StringConstraints(max_length=PHONE_INPUT_MAX_LENGTH), AfterValidator(parse_e164)
    ] = Field(examples=["+15551234567"])


class EndRoute(InputSchema):
    """Say ``text`` (or the farewell line) and end the call."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["end"]
    text: RouteText | None = None


Route = Annotated[
    AnswerRoute | SayRoute | KnowledgeRoute | ToolRoute | TransferRoute | EndRoute,
    Field(discriminator="action"),
]
Routes = dict[Annotated[str, StringConstraints(min_length=1, max_length=INTENT_NAME_MAX)], Route]


def routes_json(routes: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Validated routes (``payload.dict()``) as the model stores them: no null keys."""
    return {
        intent: {key: value for key, value in route.items() if value is not None}
        for intent, route in routes.items()
    }


# JSON types as the schema states them: no 0 for false, no "0.5" for 0.5.
STRICT_TYPES = ConfigDict(strict=True)


class AgentIn(InputSchema):
    """A whole agent (create and PUT); omitted fields take their defaults."""

    model_config = STRICT_TYPES

    name: str = Field(min_length=1, max_length=NAME_MAX)
    description: str = Field("", max_length=2000)
    system_prompt: str = Field(
        "You are a helpful, friendly voice assistant.", min_length=1, max_length=8000
    )
    greeting: str = Field("", max_length=500)
    language: str = Field("en", min_length=1, max_length=16)
    intents: list[IntentSchema] = Field(
        default_factory=lambda: [IntentSchema(**i) for i in default_intents()],
        min_length=1,
        max_length=INTENTS_MAX,
    )
    examples: Examples = Field(
        default_factory=dict,
        max_length=INTENTS_MAX,
        description=EXAMPLES_DESCRIPTION,
        examples=[{"farewell": ["that's all, thanks", "I'll hang up now"]}],
    )
    classifier_model: str = Field(DEFAULT_CLASSIFIER_MODEL, min_length=1, max_length=100)
    classifier_temperature: float = Field(0.3, ge=0.0, le=2.0)
    responder_model: str = Field(DEFAULT_RESPONDER_MODEL, min_length=1, max_length=100)
    responder_temperature: float = Field(0.7, ge=0.0, le=2.0)
    voice: str = Field(DEFAULT_VOICE, min_length=1, max_length=100)
    is_active: bool = True
    phone_number: PhoneNumberIn = None
    tools: ToolsIn = Field(default_factory=list)
    record_calls: bool = False
    routes: Routes = Field(
        default_factory=dict,
        description="Intent name → action; intents without a route are answered, "
        "and a farewell ends the call (docs/agents.md).",
    )


def no_default_in_schema(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable(**constraints: Any) -> Any:
    """A PATCH field that may be left out but not sent as null.

    None only marks "not sent" (defaults are not validated, so it needs no
    ``| None``); an explicit null fails the field's type with a 422, and the
    OpenAPI schema offers neither null nor a null default.
    """
    return Field(None, json_schema_extra=no_default_in_schema, **constraints)


class AgentPatch(InputSchema):
    """Any subset of the agent's fields (PATCH); only phone_number takes null (no number)."""

    model_config = STRICT_TYPES

    name: str = omittable(min_length=1, max_length=NAME_MAX)
    description: str = omittable(max_length=2000)
    system_prompt: str = omittable(min_length=1, max_length=8000)
    greeting: str = omittable(max_length=500)
    language: str = omittable(min_length=1, max_length=16)
    intents: list[IntentSchema] = omittable(min_length=1, max_length=INTENTS_MAX)
    examples: Examples = omittable(max_length=INTENTS_MAX, description=EXAMPLES_DESCRIPTION)
    classifier_model: str = omittable(min_length=1, max_length=100)
    classifier_temperature: float = omittable(ge=0.0, le=2.0)
    responder_model: str = omittable(min_length=1, max_length=100)
    responder_temperature: float = omittable(ge=0.0, le=2.0)
    voice: str = omittable(min_length=1, max_length=100)
    is_active: bool = omittable()
    phone_number: PhoneNumberIn = None
    tools: ToolsIn = omittable()
    record_calls: bool = omittable()
    routes: Routes = omittable()


class AgentFilters(InputSchema):
    search: str = Field("", max_length=200, description="Matches name or description.")


class AgentOut(Schema):
    id: int
    name: str
    description: str
    system_prompt: str
    greeting: str
    language: str
    intents: list[IntentSchema]
    examples: dict[str, list[str]]
    classifier_model: str
    classifier_temperature: float
    responder_model: str
    responder_temperature: float
    voice: str
    is_active: bool
    phone_number: str | None
    tools: list[dict[str, Any]]
    record_calls: bool
    routes: dict[str, dict[str, str]]
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_tools(agent: Any) -> list[dict[str, Any]]:
        """Header values never leave the database (write-only secrets)."""
        return masked_tools(agent.tools)


class AgentRef(Schema):
    id: int
    name: str


class KnowledgeIn(InputSchema):
    title: str = Field(min_length=1, max_length=KNOWLEDGE_TITLE_MAX)
    content: str = Field(min_length=1, max_length=KNOWLEDGE_CONTENT_MAX)


class KnowledgeOut(Schema):
    id: int
    agent_id: int
    title: str
    content: str
    passages: int = Field(description="How many passages retrieval ranks for this entry.")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_passages(entry: Any) -> int:
        return entry.passages.count()
