"""Twilio: the voice and status webhooks, outbound calls and hang-up over the REST API.

* ``POST /telephony/twilio/voice`` answers a call (an inbound one, or an
  outbound one the callee picked up) with TwiML that connects it to the Media
  Streams socket at ``STREAM_PATH``, passing the session id and a single-use
  token as ``<Parameter>``s; a number no active agent answers gets a polite
  line and a hang-up.
* ``POST /telephony/twilio/status`` ends the session when the call is over.
* ``place_call`` dials out from an agent's number; ``hang_up`` ends a call;
  ``transfer`` hands a call over to another number (a transfer route).
* The single-use stream token is ``calls.tickets.STREAM_TICKET``: the socket
  redeems it before it takes the call.

Both webhooks are signed by Twilio (``X-Twilio-Signature``, HMAC-SHA1 of the
URL Twilio requested and the sorted POST parameters, keyed with the auth
token). docs/telephony.md is the operator's guide.
"""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    QueryDict,
)
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from requests import RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

from agents.models import Agent
from voiceproj.phone import is_e164

from ..models import CALL_SID, CallSession
from ..services import end_session, start_session
from ..tickets import STREAM_TICKET

logger = logging.getLogger(__name__)

# The Media Streams socket's path (the WebSocket route serves it).
STREAM_PATH = "/ws/telephony/twilio/"
# CallStatus values that mean the call is over.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# Only the end of a call matters here; Twilio reports busy, failed, no-answer
# and canceled calls with this event too.
STATUS_EVENTS = ["completed"]
# A Twilio REST request may take this long: placing a call answers an API
# client that waits, and a hang-up must not hold up the end of a call.
REST_TIMEOUT_S = 10.0
NOT_IN_SERVICE = "Sorry, this number cannot take your call right now. Goodbye."


class TwilioNotConfigured(Exception):
    """TWILIO_ACCOUNT_SID or TWILIO_AUTH_TOKEN is not set."""


class TwilioCallError(Exception):
    """Twilio refused a request or could not be reached; the message says which."""


# --- REST client ---------------------------------------------------------------


class BaseUrlHttpClient(TwilioHttpClient):
    """Sends every request to ``base_url`` instead of Twilio's host (TWILIO_API_BASE).

    A custom ``http_client`` is twilio-python's documented way to change what
    the SDK's requests do (advanced-examples/custom-http-client.md); the
    generated domains' ``base_url`` attributes are internals and differ per
    product. Path, form body and basic auth stay exactly as the SDK made them.
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(method, self.base_url + path, *args, **kwargs)


def rest_client() -> Client:
    """A Twilio REST client for the configured account (``TwilioNotConfigured`` if none)."""
    if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN):
        raise TwilioNotConfigured(
            "Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN."
        )
    http_client = (
        BaseUrlHttpClient(settings.TWILIO_API_BASE, timeout=REST_TIMEOUT_S)
        if settings.TWILIO_API_BASE
        else TwilioHttpClient(timeout=REST_TIMEOUT_S)
    )
    return Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http_client)


def place_call(agent: Agent, to: str, voice_url: str, status_url: str) -> CallSession:
    """Dial ``to`` from the agent's number; the session it returns holds the call SID.

    The session exists before the request, so a database failure cannot leave
    a call ringing without a record; a call Twilio refuses deletes it again
    (``TwilioCallError``), as no call took place. The owner's quotas apply
    (``QuotaExceeded`` before anything is dialled).
    """
    client = rest_client()
    session = start_session(
        agent, agent.owner, channel=CallSession.Channel.TWILIO, caller_number=to
    )
    try:
        call = client.calls.create(
            to=to,
            from_=agent.phone_number,
            url=voice_url,
            status_callback=status_url,
            status_callback_event=STATUS_EVENTS,
        )
    except TwilioRestException as exc:
        session.delete()
        raise TwilioCallError(f"Twilio refused the call: {exc.msg}") from exc
    except (TwilioException, RequestException, ValueError) as exc:  # ValueError: not JSON
        session.delete()
        raise TwilioCallError(
            f"Twilio could not be reached or its answer was unreadable: {exc}"
        ) from exc
    if not CALL_SID.match(call.sid or ""):
        session.delete()
        raise TwilioCallError(f"Twilio's answer has no valid call SID: {call.sid!r}")
    session.call_sid = call.sid
    session.save(update_fields=["call_sid"])
    return session


def hang_up(call_sid: str) -> bool:
    """End a live call through the REST API; never raises.

    Returns whether Twilio accepted it. Failures (no Twilio account, a call
    that already ended, Twilio unreachable) are logged: the caller is ending
    the call anyway, and Twilio ends the stream with it.
    """
    return _update_call(call_sid, "hang up", status="completed")


def transfer(call_sid: str, to: str) -> bool:
    """Hand a live call over to ``to``: new TwiML for the call, ``<Dial>`` to that number.

    Twilio stops the call's media stream and dials; the caller stays on the
    line. Never raises; returns whether Twilio accepted it (failures logged).
    """
    response = VoiceResponse()
    response.dial(to)
    return _update_call(call_sid, f"transfer to {to}", twiml=str(response))


def _update_call(call_sid: str, what: str, **changes: str) -> bool:
    """Update a live call through the REST API (``what`` names it in the logs); never raises."""
    if not CALL_SID.match(call_sid or ""):
        logger.warning("Not doing %s of %r: not a Twilio call SID", what, call_sid)
        return False
    try:
        rest_client().calls(call_sid).update(**changes)
    except TwilioNotConfigured as exc:
        logger.warning("Cannot %s %s: %s", what, call_sid, exc)
        return False
    except TwilioRestException as exc:
        logger.warning("Twilio refused to %s %s: %s", what, call_sid, exc.msg)
        return False
    except Exception:
        logger.exception("%s of %s failed", what, call_sid)
        return False
    return True


# --- webhooks ----------------------------------------------------------------------


def signature_ok(request: HttpRequest) -> bool:
    """Whether Twilio signed this request; unsigned ones pass only in DEBUG without a token.

    The URL is the one the request reached as Twilio saw it: behind a TLS
    proxy, TRUST_PROXY_HEADERS makes ``build_absolute_uri`` use the forwarded
    scheme and host, which is what Twilio signed.
    """
    token = settings.TWILIO_AUTH_TOKEN
    if not token:
        return bool(settings.DEBUG)
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    return bool(
        RequestValidator(token).validate(request.build_absolute_uri(), request.POST, signature)
    )


def twilio_webhook(
    view: Callable[[HttpRequest, str], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """POST only, no CSRF token (Twilio has none), a valid signature and a CallSid.

    The view receives the validated CallSid.
    """

    @csrf_exempt
    @require_POST
    @wraps(view)
    def checked(request: HttpRequest) -> HttpResponse:
        if not signature_ok(request):
            logger.warning("Refused %s: missing or invalid X-Twilio-Signature", request.path)
            return HttpResponseForbidden(
                "Missing or invalid X-Twilio-Signature.", content_type="text/plain"
            )
        call_sid = request.POST.get("CallSid", "")
        if not CALL_SID.match(call_sid):
            return HttpResponseBadRequest(
                "CallSid is missing or not a Twilio call SID.", content_type="text/plain"
            )
        return view(request, call_sid)

    return checked


def twiml(response: VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml")


def not_in_service() -> VoiceResponse:
    """A short polite line, then the hang-up."""
    response = VoiceResponse()
    response.say(NOT_IN_SERVICE)
    response.hangup()
    return response


def stream_url(request: HttpRequest) -> str:
    """The socket's URL on the host the webhook reached: ``wss`` when that was https."""
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}{STREAM_PATH}"


def connect_stream(request: HttpRequest, session: CallSession) -> VoiceResponse:
    """``<Connect><Stream>`` to the socket with the session id and a fresh token."""
    stream = Stream(url=stream_url(request))
    stream.parameter(name="session_id", value=str(session.id))
    stream.parameter(name="token", value=STREAM_TICKET.issue(session.id))
    connect = Connect()
    connect.append(stream)
    response = VoiceResponse()
    response.append(connect)
    return response


def answering_agent(number: str) -> Agent | None:
    """The active agent whose phone number is ``number``."""
    if not is_e164(number):
        return None
    return Agent.objects.select_related("owner").filter(phone_number=number, is_active=True).first()


def call_session(call_sid: str, params: QueryDict) -> CallSession | None:
    """The call's session: the one already made for this CallSid, or a new one.

    An outbound call, and an inbound webhook Twilio retried, already have
    theirs; otherwise the agent answering ``To`` gets one (None if none does).
    """
    session = CallSession.objects.filter(call_sid=call_sid).first()
    if session is not None:
        return session
    agent = answering_agent(params.get("To", ""))
    if agent is None:
        return None
    caller = params.get("From", "")
    # Withheld numbers, SIP and Twilio Client callers have no E.164 number.
    session, _ = CallSession.objects.get_or_create(
        call_sid=call_sid,
        defaults={
            "agent": agent,
            "user": agent.owner,
            "channel": CallSession.Channel.TWILIO,
            "caller_number": caller if is_e164(caller) else "",
        },
    )
    return session


@twilio_webhook
def voice(request: HttpRequest, call_sid: str) -> HttpResponse:
    """Twilio's incoming-call webhook (also requested when an outbound call is answered)."""
    session = call_session(call_sid, request.POST)
    if session is None or not session.is_active:
        logger.info("Call %s to %s: no active agent answers it", call_sid, request.POST.get("To"))
        return twiml(not_in_service())
    return twiml(connect_stream(request, session))


@twilio_webhook
def status(request: HttpRequest, call_sid: str) -> HttpResponse:
    """Twilio's status callback: a call that is over ends its session.

    A signed request always gets 200: Twilio retries errors, and an unknown
    call or a status that changes nothing leaves nothing to retry.
    """
    call_status = request.POST.get("CallStatus", "")
    if call_status in FINAL_STATUSES:
        session = CallSession.objects.filter(call_sid=call_sid).first()
        if session is None:
            logger.info("Status %s of unknown call %s: nothing to end", call_status, call_sid)
        else:
            outcome = (
                CallSession.Status.ERROR if call_status == "failed" else CallSession.Status.ENDED
            )
            end_session(session, reason=call_status, status=outcome)
    return HttpResponse(status=200)


def webhook_urls(request: HttpRequest) -> tuple[str, str]:
    """Absolute voice and status webhook URLs on the host ``request`` reached."""
    return (
        request.build_absolute_uri(reverse("telephony:twilio-voice")),
        request.build_absolute_uri(reverse("telephony:twilio-status")),
    )
