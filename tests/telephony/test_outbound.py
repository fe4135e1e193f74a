"""Outbound calls (``POST /api/agents/{id}/calls``) and hang-up, against a fake Twilio REST API."""

import base64
from urllib.parse import parse_qs

import pytest
from asgiref.sync import async_to_sync

from agents.models import Agent
from calls.models import CallSession
from calls.telephony.twilio import hang_up
from calls.tickets import STREAM_TICKET
from tests.api.helpers import fields, post
from tests.conftest import jwt_headers
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

from .conftest import AGENT_NUMBER, VOICE, call_params, new_call_sid
from .test_webhooks import stream_of

pytestmark = pytest.mark.django_db

CALLEE = "+14155550123"
CALLS_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


def calls_url(agent: Agent) -> str:
    return f"/api/agents/{agent.id}/calls"


def form_of(recorded) -> dict[str, list[str]]:
    return parse_qs(recorded.body.decode())


def test_outbound_call_is_placed_from_the_agents_number(client, auth, phone_agent, twilio_fake):
    response = post(client, calls_url(phone_agent), {"to": "+1 (415) 555-0123"}, **auth)

    assert response.status_code == 201, response.content
    body = response.json()
    session = CallSession.objects.get()
    assert body == {"session_id": str(session.id), "call_sid": session.call_sid}
    assert session.call_sid.startswith("CA") and len(session.call_sid) == 34
    assert (session.channel, session.caller_number, session.status) == ("twilio", CALLEE, "active")
    assert session.agent == phone_agent

    (sent,) = twilio_fake.requests
    assert (sent.method, sent.path) == ("POST", CALLS_PATH)
    basic = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {basic}"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    form = form_of(sent)
    assert form["To"] == [CALLEE]
    assert form["From"] == [AGENT_NUMBER]
    assert form["Url"] == ["http://testserver/telephony/twilio/voice"]
    assert form["StatusCallback"] == ["http://testserver/telephony/twilio/status"]
    assert form["StatusCallbackEvent"] == ["completed"]


def test_the_answered_outbound_call_streams_into_its_session(
    client, auth, phone_agent, twilio_fake, twilio_post
):
    """Twilio requests the voice URL when the callee answers: From is the agent, To the callee."""
    call_sid = post(client, calls_url(phone_agent), {"to": CALLEE}, **auth).json()["call_sid"]
    answered = call_params(
        to=CALLEE, caller=AGENT_NUMBER, CallSid=call_sid, Direction="outbound-api"
    )
    _, params = stream_of(twilio_post(VOICE, answered))

    session = CallSession.objects.get()
    assert params["session_id"] == str(session.id)
    assert async_to_sync(STREAM_TICKET.redeem)(params["token"], session.id) is not None
    assert session.caller_number == CALLEE


def test_an_agent_without_a_number_cannot_call(client, auth, agent, twilio_fake):
    response = post(client, calls_url(agent), {"to": CALLEE}, **auth)
    assert "phone number" in fields(response)["phone_number"]
    assert twilio_fake.requests == []
    assert not CallSession.objects.exists()


def test_without_twilio_settings_the_api_answers_503(client, auth, phone_agent, settings):
    settings.TWILIO_ACCOUNT_SID = ""
    settings.TWILIO_AUTH_TOKEN = ""
    response = post(client, calls_url(phone_agent), {"to": CALLEE}, **auth)
    assert response.status_code == 503
    assert "TWILIO_ACCOUNT_SID" in response.json()["detail"]
    assert not CallSession.objects.exists()


def test_a_call_twilio_refuses_is_a_502_with_twilios_message(
    client, auth, phone_agent, twilio_fake
):
    twilio_fake.options["owned_numbers"] = {"+14155550999"}
    response = post(client, calls_url(phone_agent), {"to": CALLEE}, **auth)
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert detail.startswith("Twilio refused the call:")
    assert f"The source phone number provided, {AGENT_NUMBER}, is not yet verified" in detail
    assert not CallSession.objects.exists()


def test_a_user_at_a_quota_gets_429_and_nothing_is_dialled(
    client, auth, phone_agent, twilio_fake, settings
):
    settings.VOICE_MAX_ACTIVE_CALLS_PER_USER = 1
    assert post(client, calls_url(phone_agent), {"to": CALLEE}, **auth).status_code == 201
    refused = post(client, calls_url(phone_agent), {"to": CALLEE}, **auth)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_active_calls"
    assert len(twilio_fake.requests) == 1  # only the first call was placed
    assert CallSession.objects.count() == 1

    settings.VOICE_MAX_ACTIVE_CALLS_PER_USER = 0
    settings.VOICE_SESSIONS_PER_HOUR = 2
    assert post(client, calls_url(phone_agent), {"to": CALLEE}, **auth).status_code == 201
    refused = post(client, calls_url(phone_agent), {"to": CALLEE}, **auth)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_sessions_per_hour"
    assert int(refused["Retry-After"]) > 0
    assert len(twilio_fake.requests) == 2


def test_wrong_credentials_are_a_502(client, auth, phone_agent, twilio_fake, settings):
    settings.TWILIO_AUTH_TOKEN = "not-the-token"
    response = post(client, calls_url(phone_agent), {"to": CALLEE}, **auth)
    assert response.status_code == 502
    assert "Authenticate" in response.json()["detail"]


@pytest.mark.parametrize("mode", ["error", "malformed"])
def test_a_failing_twilio_is_a_502(client, auth, phone_agent, twilio_fake, mode):
    twilio_fake.mode = mode
    response = post(client, calls_url(phone_agent), {"to": CALLEE}, **auth)
    assert response.status_code == 502
    assert response.json()["detail"].startswith("Twilio")
    assert not CallSession.objects.exists()


def test_an_unreachable_twilio_is_a_502(
    client, auth, phone_agent, twilio_fake, settings, closed_port_url
):
    settings.TWILIO_API_BASE = closed_port_url
    response = post(client, calls_url(phone_agent), {"to": CALLEE}, **auth)
    assert response.status_code == 502
    assert "could not be reached" in response.json()["detail"]


@pytest.mark.parametrize("to", ["", "12345", "+0123456789", "+1234567", "call me", "+1" + "2" * 15])
def test_an_invalid_number_to_call_is_a_422(client, auth, phone_agent, twilio_fake, to):
    assert "E.164" in fields(post(client, calls_url(phone_agent), {"to": to}, **auth))["to"]
    assert twilio_fake.requests == []


def test_the_number_to_call_is_required(client, auth, phone_agent, twilio_fake):
    assert "to" in fields(post(client, calls_url(phone_agent), {}, **auth))


def test_another_users_agent_is_a_404_and_an_inactive_one_a_409(
    client, phone_agent, other_user, auth, twilio_fake
):
    stranger = jwt_headers(other_user)
    assert post(client, calls_url(phone_agent), {"to": CALLEE}, **stranger).status_code == 404
    Agent.objects.filter(pk=phone_agent.pk).update(is_active=False)
    assert post(client, calls_url(phone_agent), {"to": CALLEE}, **auth).status_code == 409
    assert twilio_fake.requests == []


def test_placing_a_call_needs_a_token(client, phone_agent):
    assert post(client, calls_url(phone_agent), {"to": CALLEE}).status_code == 401


# --- hang-up --------------------------------------------------------------------------


def test_hang_up_completes_the_call_through_the_rest_api(client, auth, phone_agent, twilio_fake):
    call_sid = post(client, calls_url(phone_agent), {"to": CALLEE}, **auth).json()["call_sid"]
    assert hang_up(call_sid) is True
    sent = twilio_fake.requests[-1]
    assert (sent.method, sent.path) == (
        "POST",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json",
    )
    assert form_of(sent) == {"Status": ["completed"]}
    assert twilio_fake.options["calls"][call_sid]["status"] == "completed"


def test_hang_up_never_raises(twilio_fake, settings, closed_port_url, caplog):
    assert hang_up(new_call_sid()) is False  # Twilio: 404, no such call
    assert hang_up("not-a-sid") is False
    settings.TWILIO_API_BASE = closed_port_url
    assert hang_up(new_call_sid()) is False
    settings.TWILIO_AUTH_TOKEN = ""
    assert hang_up(new_call_sid()) is False
    assert "Twilio is not configured" in caplog.text
