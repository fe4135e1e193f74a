"""Call sessions over REST: start one for an agent, list, inspect, end, export.

Starting a session only creates the record and returns the WebSocket URL the
client connects to (wire protocol v1); the conversation itself runs over that
socket. Placing a phone call (``/agents/{id}/calls``) asks Twilio to dial out;
the call then runs over Twilio's Media Streams socket. Every query is scoped
to the authenticated user (another user's session is a 404). Both ways of
starting a call count against the user's quotas: 429 when one is reached
(calls/quotas.py, docs/api.md#quotas).
"""

from typing import Literal
from urllib.parse import urlencode
from uuid import UUID

from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status
from ninja.errors import HttpError
from ninja.pagination import paginate

from accounts.auth import current_user, jwt_auth
from agents.api import owned_agent
from voiceproj.errors import (
    DbId,
    ErrorOut,
    InputSchema,
    QuotaErrorOut,
    ValidationErrorOut,
    field_error,
)
from voiceproj.pagination import Pages

from .export import transcript_text_download
from .models import CallSession, Turn
from .recording import recording_response
from .schemas import (
    CallIn,
    CallOut,
    SessionOut,
    StatsOut,
    TicketOut,
    TranscriptOut,
    TurnOut,
    ws_url,
)
from .services import end_session, start_session
from .stats import dashboard_stats
from .telephony.twilio import TwilioCallError, TwilioNotConfigured, place_call, webhook_urls
from .tickets import VOICE_TICKET

router = Router(tags=["sessions"], auth=jwt_auth)


class SessionFilters(InputSchema):
    status: Literal["active", "ended", "error"] | None = None
    agent: DbId | None = None
    channel: Literal["web", "twilio", "scenario"] | None = None


def owned_session(request: HttpRequest, session_id: UUID) -> CallSession:
    return get_object_or_404(
        CallSession.objects.select_related("agent"), pk=session_id, user=current_user(request)
    )


@router.post(
    "/agents/{agent_id}/sessions",
    response={201: SessionOut, 404: ErrorOut, 409: ErrorOut, 429: QuotaErrorOut},
)
def create_session(request: HttpRequest, agent_id: DbId):  # type: ignore[no-untyped-def]
    """Open a call with the agent; connect to the returned ``ws_url`` to talk.

    429 when the user has the most active calls allowed at once, or started
    the most allowed within the hour (then with ``Retry-After``).
    """
    agent = owned_agent(request, agent_id)
    if not agent.is_active:
        raise HttpError(409, "This agent is inactive; activate it before starting a call.")
    return Status(201, start_session(agent, current_user(request)))


@router.post(
    "/agents/{agent_id}/calls",
    response={
        201: CallOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ValidationErrorOut,
        429: QuotaErrorOut,
        502: ErrorOut,
        503: ErrorOut,
    },
    tags=["telephony"],
)
def create_call(request: HttpRequest, agent_id: DbId, payload: CallIn):  # type: ignore[no-untyped-def]
    """Phone ``to`` from the agent's number through Twilio; the agent talks when they answer.

    Twilio requests this server's voice and status webhooks on the host this
    request reached, so call the API on the public host (docs/telephony.md).
    503 when Twilio is not configured; 502 when Twilio refuses or is unreachable;
    429 past the user's quotas, as for a session.
    """
    agent = owned_agent(request, agent_id)
    if not agent.is_active:
        raise HttpError(409, "This agent is inactive; activate it before placing a call.")
    if not agent.phone_number:
        raise field_error("phone_number", "This agent has no phone number to call from; set one.")
    voice_url, status_url = webhook_urls(request)
    try:
        session = place_call(agent, payload.to, voice_url=voice_url, status_url=status_url)
    except TwilioNotConfigured as exc:
        raise HttpError(503, str(exc)) from exc
    except TwilioCallError as exc:
        raise HttpError(502, str(exc)) from exc
    return Status(201, {"session_id": session.id, "call_sid": session.call_sid})


@router.get("/sessions", response=list[SessionOut])
@paginate(Pages, page_size=20)
def list_sessions(request: HttpRequest, filters: Query[SessionFilters]) -> QuerySet[CallSession]:
    """The user's sessions, newest first, optionally by ``status``, ``agent`` id and ``channel``."""
    sessions = CallSession.objects.filter(user=current_user(request)).select_related("agent")
    if filters.status:
        sessions = sessions.filter(status=filters.status)
    if filters.agent:
        sessions = sessions.filter(agent_id=filters.agent)
    if filters.channel:
        sessions = sessions.filter(channel=filters.channel)
    return sessions


@router.get("/sessions/{session_id}", response={200: SessionOut, 404: ErrorOut})
def get_session(request: HttpRequest, session_id: UUID) -> CallSession:
    """One session with its latency summary (p50/p95/max per timing)."""
    return owned_session(request, session_id)


@router.post(
    "/sessions/{session_id}/ticket", response={201: TicketOut, 404: ErrorOut, 409: ErrorOut}
)
def ticket(request: HttpRequest, session_id: UUID):  # type: ignore[no-untyped-def]
    """A single-use, 30-second ticket for the session's socket, for clients that cannot
    send an ``Authorization`` header (a browser's ``WebSocket``): connect to ``ws_url``.
    """
    session = owned_session(request, session_id)
    if session.status != CallSession.Status.ACTIVE or session.channel != CallSession.Channel.WEB:
        raise HttpError(409, "Only an active web call has a socket to join.")
    issued = VOICE_TICKET.issue(session.id, user=session.user_id)
    return Status(
        201,
        {
            "ticket": issued,
            "expires_in": VOICE_TICKET.max_age_s,
            "ws_url": f"{ws_url(request, session)}?{urlencode({'ticket': issued})}",
        },
    )


@router.post("/sessions/{session_id}/end", response={200: SessionOut, 404: ErrorOut})
def end(request: HttpRequest, session_id: UUID) -> CallSession:
    """End the session; ending an ended session returns it unchanged."""
    return end_session(owned_session(request, session_id), reason="ended_via_api")


@router.get("/sessions/{session_id}/turns", response={200: list[TurnOut], 404: ErrorOut})
def turns(request: HttpRequest, session_id: UUID) -> QuerySet[Turn]:
    """Every turn in order: speaker, text, intent, timings in ms, interrupted."""
    return owned_session(request, session_id).turns.order_by("index")


@router.get(
    "/sessions/{session_id}/transcript",
    response={200: TranscriptOut, 404: ErrorOut},
    openapi_extra={
        "responses": {
            200: {
                "description": "JSON (format=json) or a text/plain attachment (format=txt)",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    },
)
def transcript(request: HttpRequest, session_id: UUID, format: Literal["json", "txt"] = "json"):  # type: ignore[no-untyped-def]
    """Export the conversation: ``format=json`` or ``format=txt`` (a download)."""
    session = owned_session(request, session_id)
    rows = list(session.turns.order_by("index"))
    if format == "txt":
        return transcript_text_download(session, rows)
    return {"session": session, "turns": rows}


@router.get(
    "/sessions/{session_id}/recording",
    response={200: None, 404: ErrorOut},
    openapi_extra={
        "responses": {
            200: {
                "description": "The call's recording: a stereo PCM16 WAV, the caller on the "
                "left channel and the agent on the right, as long as the call",
                "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
                "headers": {"Accept-Ranges": {"schema": {"type": "string"}}},
            },
            206: {
                "description": "The byte range the `Range` header asked for, with `Content-Range`",
                "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
            },
            416: {"description": "The range starts past the end of the file"},
        }
    },
)
def recording(request: HttpRequest, session_id: UUID) -> HttpResponseBase:
    """The session's recording (``audio/wav``); HTTP range requests seek in it.

    404 when the call was not recorded: its agent had ``record_calls`` off, the
    recording was deleted after RECORDING_RETENTION_DAYS, or it is still being
    stored (just after the call ended).
    """
    session = owned_session(request, session_id)
    try:
        return recording_response(request, session)
    except Http404 as exc:
        raise HttpError(404, str(exc)) from exc  # say why, not just "Not found."


@router.get("/stats", response=StatsOut)
def stats(request: HttpRequest) -> dict:
    """The user's dashboard figures: agents, sessions by status, turns, latency percentiles."""
    return dashboard_stats(current_user(request))
