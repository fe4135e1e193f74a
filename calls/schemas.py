"""Bodies of the call-session and phone-call endpoints and of ``/api/stats``."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Schema
from pydantic import AfterValidator, Field

from agents.schemas import AgentRef
from voiceproj.errors import InputSchema
from voiceproj.phone import PHONE_INPUT_MAX_LENGTH, parse_e164

from .services import ws_path


class Percentiles(Schema):
    p50: int | None
    p95: int | None
    max: int | None


class SessionOut(Schema):
    id: UUID
    status: str
    agent: AgentRef
    channel: Literal["web", "twilio", "scenario"]
    caller_number: str = Field(description="E.164 number of the other party of a phone call.")
    call_sid: str = Field(description="Twilio's id of a phone call (CA...), else empty.")
    ws_url: str | None = None
    started_at: datetime
    ended_at: datetime | None
    end_reason: str
    turn_count: int
    metrics: dict[str, Percentiles]

    @staticmethod
    def resolve_ws_url(obj: Any, context: dict[str, Any]) -> str | None:
        """Absolute WebSocket URL from the request's host.

        ``None`` once the call ended, and for phone calls: Twilio holds their one
        connection (Media Streams), so there is nothing for a client to join.
        """
        if obj.status != "active" or obj.channel != "web":
            return None
        if not context or context.get("request") is None:
            return None
        return ws_url(context["request"], obj)


def ws_url(request: HttpRequest, session: Any) -> str:
    """Absolute URL of the session's socket, with the scheme and host the request came to."""
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}{ws_path(session)}"


class TicketOut(Schema):
    ticket: str = Field(description="Single-use: admits one socket, then never again.")
    expires_in: int = Field(description="Seconds the ticket stays valid if unused.")
    ws_url: str = Field(description="The session's socket URL with the ticket in its query.")


class CallIn(InputSchema):
    to: Annotated[str, AfterValidator(parse_e164)] = Field(
        max_length=PHONE_INPUT_MAX_LENGTH,
        description="The number to call, E.164 (spaces, dashes, dots and brackets are dropped).",
        examples=["+15551234567"],
    )


class CallOut(Schema):
    session_id: UUID
    call_sid: str


class ToolCallOut(Schema):
    """One tool call of an agent turn, as audited (docs/tools.md)."""

    name: str
    arguments: dict[str, Any]
    status: str = Field(
        description="`ok` or a stable failure code: bad_arguments, blocked_address, "
        "timeout, unreachable, http_error, too_large, redirect_refused, cancelled, "
        "already_called, unavailable, failed."
    )
    ms: int | None
    result: str = Field(description="The start of the result (or the error).")


class TurnOut(Schema):
    index: int
    turn_id: int
    speaker: str
    text: str
    intent: str
    stt_ms: int | None
    classify_ms: int | None
    first_token_ms: int | None
    first_audio_ms: int | None
    total_ms: int | None
    interrupted: bool
    tool_calls: list[ToolCallOut]
    sources: list[int] = Field(description="Ids of the knowledge entries the reply drew on.")
    created_at: datetime


class TranscriptLine(Schema):
    index: int
    speaker: str
    text: str
    intent: str
    interrupted: bool
    created_at: datetime


class TranscriptOut(Schema):
    session: SessionOut
    turns: list[TranscriptLine]


class AgentCounts(Schema):
    total: int
    active: int


class SessionCounts(Schema):
    total: int
    active: int
    ended: int
    error: int


class TurnCounts(Schema):
    total: int
    user: int
    agent: int
    interrupted: int


class StatsOut(Schema):
    agents: AgentCounts
    sessions: SessionCounts
    turns: TurnCounts
    latency: dict[str, Percentiles]
