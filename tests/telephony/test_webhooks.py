"""Twilio's voice and status webhooks: signatures, the TwiML answers, sessions, stream tokens."""

import time
import xml.etree.ElementTree as ET
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.core import signing
from twilio.request_validator import RequestValidator

from agents.models import Agent
from calls.models import CallSession
from calls.tickets import STREAM_TICKET
from tests.fakes.twilio import AUTH_TOKEN

from .conftest import CALLER_NUMBER, STATUS, VOICE, call_params, post_form

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _signed(twilio_fake):
    """Every test here runs with a Twilio auth token set (so signatures are required)."""


def verify(token: str, session_id) -> bool:
    return async_to_sync(STREAM_TICKET.redeem)(token, session_id) is not None


def stream_of(response) -> tuple[str, dict[str, str]]:
    """The ``<Stream>`` URL and its ``<Parameter>``s of a ``<Connect>`` answer."""
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Connect"]
    (stream,) = root.find("Connect")
    assert stream.tag == "Stream"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    return stream.get("url"), params


def assert_polite_hang_up(response) -> None:
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert "Goodbye" in root.find("Say").text


def test_inbound_call_is_connected_to_the_stream_with_a_single_use_token(
    twilio_post, phone_agent, user
):
    params = call_params()
    url, stream_params = stream_of(twilio_post(VOICE, params))

    assert url == "ws://testserver/ws/telephony/twilio/"
    session = CallSession.objects.get()
    assert stream_params["session_id"] == str(session.id)
    assert (session.agent, session.user, session.status) == (phone_agent, user, "active")
    assert session.channel == CallSession.Channel.TWILIO
    assert session.caller_number == CALLER_NUMBER
    assert session.call_sid == params["CallSid"]

    token = stream_params["token"]
    assert verify(token, session.id) is True
    assert verify(token, session.id) is False  # single use


def test_https_webhook_gets_a_wss_stream(twilio_post, phone_agent):
    url, _ = stream_of(twilio_post(VOICE, call_params(), secure=True))
    assert url == "wss://testserver/ws/telephony/twilio/"


def test_behind_a_trusted_tls_proxy_the_public_https_url_is_signed_and_wss_answered(
    twilio_post, phone_agent, settings
):
    """TRUST_PROXY_HEADERS: Twilio signed https://public.example/...; daphne saw plain http."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = ["public.example"]
    public = f"https://public.example{VOICE}"
    headers = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "public.example"}

    url, _ = stream_of(twilio_post(VOICE, call_params(), url=public, **headers))
    assert url == "wss://public.example/ws/telephony/twilio/"


def test_forwarded_headers_count_only_when_trusted(twilio_post, phone_agent, settings):
    settings.SECURE_PROXY_SSL_HEADER = None
    public = f"https://testserver{VOICE}"
    response = twilio_post(VOICE, call_params(), url=public, HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 403


def test_a_retried_webhook_finds_the_session_it_made(twilio_post, phone_agent):
    params = call_params()
    _, first = stream_of(twilio_post(VOICE, params))
    _, again = stream_of(twilio_post(VOICE, params))
    assert CallSession.objects.count() == 1
    assert again["session_id"] == first["session_id"]
    assert again["token"] != first["token"]
    assert verify(again["token"], again["session_id"]) is True


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_TWILIO_SIGNATURE": ""},
        {"HTTP_X_TWILIO_SIGNATURE": "bm90IGEgc2lnbmF0dXJl"},
    ],
    ids=["missing", "empty", "garbage"],
)
def test_unsigned_or_badly_signed_webhooks_are_refused(client, phone_agent, headers):
    response = post_form(client, VOICE, call_params(), **headers)
    assert response.status_code == 403
    assert b"X-Twilio-Signature" in response.content
    assert not CallSession.objects.exists()


def test_a_signature_over_other_parameters_or_with_another_key_is_refused(
    client, twilio_post, phone_agent
):
    params = call_params()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"http://testserver{VOICE}", params)
    tampered = {**params, "From": "+15005550006"}
    assert post_form(client, VOICE, tampered, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 403
    assert twilio_post(VOICE, params, token="another-account-token").status_code == 403
    assert not CallSession.objects.exists()


def test_unsigned_webhooks_pass_only_in_debug_without_a_token(client, phone_agent, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    settings.DEBUG = False
    assert post_form(client, VOICE, call_params()).status_code == 403
    settings.DEBUG = True
    url, _ = stream_of(post_form(client, VOICE, call_params()))
    assert url.endswith("/ws/telephony/twilio/")


def test_debug_does_not_waive_the_signature_when_a_token_is_set(client, phone_agent, settings):
    settings.DEBUG = True
    assert post_form(client, VOICE, call_params()).status_code == 403


def test_a_number_no_agent_answers_gets_a_polite_line_and_a_hang_up(twilio_post, phone_agent):
    assert_polite_hang_up(twilio_post(VOICE, call_params(to="+14155550199")))
    assert not CallSession.objects.exists()


def test_an_inactive_agents_number_is_not_in_service(twilio_post, phone_agent):
    Agent.objects.filter(pk=phone_agent.pk).update(is_active=False)
    assert_polite_hang_up(twilio_post(VOICE, call_params()))
    assert not CallSession.objects.exists()


def test_a_call_whose_session_ended_is_not_connected_again(twilio_post, phone_agent):
    params = call_params()
    twilio_post(VOICE, params)
    CallSession.objects.update(status=CallSession.Status.ENDED)
    assert_polite_hang_up(twilio_post(VOICE, params))


@pytest.mark.parametrize("caller", ["anonymous", "client:alice", "sip:bob@example.com", ""])
def test_callers_without_an_e164_number_are_answered_with_a_blank_number(
    twilio_post, phone_agent, caller
):
    stream_of(twilio_post(VOICE, call_params(caller=caller)))
    assert CallSession.objects.get().caller_number == ""


@pytest.mark.parametrize("call_sid", [None, "", "CA123", "PN" + "0" * 32, "CA" + "G" * 32])
def test_a_missing_or_malformed_call_sid_is_a_400(twilio_post, phone_agent, call_sid):
    params = call_params()
    if call_sid is None:
        del params["CallSid"]
    else:
        params["CallSid"] = call_sid
    response = twilio_post(VOICE, params)
    assert response.status_code == 400
    assert b"CallSid" in response.content


@pytest.mark.parametrize("path", [VOICE, STATUS])
def test_webhooks_take_post_only(client, path):
    assert client.get(path).status_code == 405
    assert client.put(path).status_code == 405


# --- the stream token ----------------------------------------------------------------


def test_stream_token_is_bound_to_its_session(twilio_post, phone_agent):
    _, params = stream_of(twilio_post(VOICE, call_params()))
    _, other = stream_of(twilio_post(VOICE, call_params()))
    assert verify(params["token"], other["session_id"]) is False
    # A refused attempt does not use the token up.
    assert verify(params["token"], params["session_id"]) is True


@pytest.mark.parametrize(
    "token",
    [None, 42, "", "garbage", signing.dumps({"session": "x", "id": "y"}, salt="another-salt")],
)
def test_malformed_or_foreign_tokens_are_refused(phone_agent, token):
    assert verify(token, "x") is False


def test_stream_token_expires(phone_agent, user):
    session = CallSession.objects.create(agent=phone_agent, user=user, channel="twilio")
    issued_at = time.time() - STREAM_TICKET.max_age_s - 1
    # Django's signer reads the clock from its own module: issue the token in the past.
    with mock.patch("django.core.signing.time.time", return_value=issued_at):
        token = STREAM_TICKET.issue(session.id)
    assert verify(token, session.id) is False


def test_stream_token_salt_is_its_own(phone_agent, user):
    """A value Django signed with the same key for another purpose is no token."""
    session = CallSession.objects.create(agent=phone_agent, user=user, channel="twilio")
    claims = {"session": str(session.id), "id": "x"}
    assert verify(signing.dumps(claims), session.id) is False
    assert verify(signing.dumps(claims, salt=STREAM_TICKET.salt), session.id) is True


# --- status callback -------------------------------------------------------------------


@pytest.fixture
def phone_call(twilio_post, phone_agent) -> CallSession:
    """A connected inbound call."""
    stream_of(twilio_post(VOICE, call_params()))
    return CallSession.objects.get()


def status_params(session: CallSession, status: str) -> dict:
    return call_params(CallSid=session.call_sid, CallStatus=status, CallDuration="12")


@pytest.mark.parametrize(
    ("call_status", "outcome"),
    [
        ("completed", "ended"),
        ("busy", "ended"),
        ("no-answer", "ended"),
        ("canceled", "ended"),
        ("failed", "error"),
    ],
)
def test_a_final_status_ends_the_session_with_it_as_the_reason(
    twilio_post, phone_call, call_status, outcome
):
    response = twilio_post(STATUS, status_params(phone_call, call_status))
    assert response.status_code == 200
    phone_call.refresh_from_db()
    assert (phone_call.status, phone_call.end_reason) == (outcome, call_status)
    assert phone_call.ended_at is not None


def test_a_repeated_status_changes_nothing(twilio_post, phone_call):
    twilio_post(STATUS, status_params(phone_call, "completed"))
    ended_at = CallSession.objects.get().ended_at
    assert twilio_post(STATUS, status_params(phone_call, "failed")).status_code == 200
    phone_call.refresh_from_db()
    assert (phone_call.status, phone_call.end_reason) == ("ended", "completed")
    assert phone_call.ended_at == ended_at


@pytest.mark.parametrize("call_status", ["queued", "ringing", "in-progress", "something-new"])
def test_other_statuses_leave_the_call_running(twilio_post, phone_call, call_status):
    assert twilio_post(STATUS, status_params(phone_call, call_status)).status_code == 200
    phone_call.refresh_from_db()
    assert phone_call.status == "active"


def test_status_of_an_unknown_call_is_acknowledged(twilio_post, phone_call):
    response = twilio_post(STATUS, call_params(CallStatus="completed"))
    assert response.status_code == 200
    assert CallSession.objects.get().status == "active"


def test_status_callback_needs_the_signature(client, phone_call):
    response = post_form(client, STATUS, status_params(phone_call, "completed"))
    assert response.status_code == 403
    assert CallSession.objects.get().status == "active"
