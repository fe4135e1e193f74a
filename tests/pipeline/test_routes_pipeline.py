"""Intent routes and knowledge end to end on the instant engines: a real
WebSocket client (and a fake Twilio speaking Media Streams and the REST API)
↔ real daphne ↔ real Celery workers per queue.

The instant classifier picks the intent the text names (or ``question`` for a
``?``), which steers each turn to the route under test; its responder always
streams the same fixed reply, so a knowledge answer can only come from the
knowledge path.
"""

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_plus

import pytest

from agents.models import KnowledgeEntry
from calls.models import CallSession, Turn
from calls.telephony.media_stream import keypad_text
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, register_call, twilio_server
from voiceproj.pipeline import NO_KNOWLEDGE_LINE, PIPELINE_QUEUES, TRANSFER_LINE
from workers.engines.instant import REPLY

from .conftest import Call
from .instant_stack import InstantStack, start_instant_stack
from .test_e2e import api_turns, of_type, record_turn, talk
from .test_twilio_stream import answered_call, incoming_call
from .wire import close_code, next_event, open_socket, send_json

pytestmark = pytest.mark.e2e

TRANSFER_TO = "+14155550199"
AGENT_NUMBER = "+14155550177"


@pytest.fixture(scope="module")
def twilio_rest():
    fake = twilio_server()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def routes_stack(live_server_factory, live_log_dir, twilio_rest) -> Iterator[InstantStack]:
    """The instant stack, its daphne able to reach the fake Twilio REST API."""
    with start_instant_stack(
        live_server_factory,
        live_log_dir,
        PIPELINE_QUEUES,
        tag="-routes",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE=twilio_rest.url,
    ) as stack:
        yield stack


def said(events: list[dict[str, Any]]) -> str:
    return of_type(events, "response.done")[0]["text"]


def test_a_say_route_says_its_text_instead_of_the_model_reply(
    routes_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    line = "Welcome to the front desk of the Harbour Hotel."
    call = make_call(routes={"greeting": {"action": "say", "text": line}})
    greeting, question = talk(routes_stack, call, "hello there", "Do you have rooms free?")
    assert of_type(greeting, "intent")[0]["intent"] == "greeting"
    assert said(greeting) == line
    assert said(question) == REPLY  # an intent without a route is answered as before


def test_an_end_route_says_its_text_and_ends_the_call(
    routes_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    call = make_call(routes={"command": {"action": "end", "text": "Done. Goodbye from us."}})

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any], int | None]:
        url = routes_stack.server.ws_url(call.session_id)
        async with await open_socket(url, call.token) as ws:
            await next_event(ws, "ready")
            await send_json(ws, type="text", text="I have a command: cancel my booking")
            _, events, _ = await record_turn(ws)
            return events, await next_event(ws, "ended"), await close_code(ws)

    events, ended, code = asyncio.run(scenario())
    assert said(events) == "Done. Goodbye from us."
    assert (ended["reason"], code) == ("farewell", 1000)
    session = CallSession.objects.get(pk=call.session_id)
    assert (session.status, session.end_reason) == ("ended", "farewell")


def test_a_transfer_route_sends_handoff_on_a_web_call_and_ends_it(
    routes_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    call = make_call(routes={"clarification": {"action": "transfer", "to": TRANSFER_TO}})

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        url = routes_stack.server.ws_url(call.session_id)
        async with await open_socket(url, call.token) as ws:
            await next_event(ws, "ready")
            await send_json(ws, type="text", text="Sorry, can you repeat that?")
            _, events, _ = await record_turn(ws)
            return events, await next_event(ws, "ended")

    events, ended = asyncio.run(scenario())
    handoff = of_type(events, "handoff")
    assert handoff == [{"type": "handoff", "turn_id": 1, "to": TRANSFER_TO}]
    assert said(events) == TRANSFER_LINE
    assert ended["reason"] == "transferred"
    assert CallSession.objects.get(pk=call.session_id).end_reason == "transferred"


def test_a_knowledge_route_answers_from_the_agents_knowledge_and_cites_it(
    routes_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    call = make_call(routes={"question": {"action": "knowledge"}})
    hours = KnowledgeEntry.objects.create(
        agent=call.agent,
        title="Opening hours",
        content="The bakery opens at 6:30 on weekdays. On Sundays the bakery opens at noon.",
    )
    parking = KnowledgeEntry.objects.create(
        agent=call.agent, title="Parking", content="Guests park for free behind the building."
    )
    found, unknown, greeting = talk(
        routes_stack,
        call,
        "When does the bakery open on Sundays?",
        "Do you sell train tickets?",
        "Hello! Is parking free?",
    )
    assert "On Sundays the bakery opens at noon." in said(found)
    assert REPLY not in said(found)
    assert said(unknown) == NO_KNOWLEDGE_LINE

    turns = [t for t in api_turns(routes_stack.server, call) if t["speaker"] == "agent"]
    assert [t["sources"] for t in turns[:2]] == [[hours.pk], []]
    # An answered intent (greeting) gets the matching passages in its prompt
    # and cites them; the instant responder's words stay its own.
    assert said(greeting) == REPLY
    assert (turns[2]["intent"], turns[2]["sources"]) == ("greeting", [parking.pk])


def test_a_phone_call_with_a_transfer_route_is_transferred_through_twilio(
    routes_stack: InstantStack, make_call: Callable[..., Call], twilio_rest
) -> None:
    make_call(
        name="Phone desk",
        phone_number=AGENT_NUMBER,
        intents=[
            {"name": "keypad", "description": "the caller pressed a key"},
            {"name": "other", "description": "anything else"},
        ],
        routes={"keypad": {"action": "transfer", "to": TRANSFER_TO}},
    )
    call_sid, twiml = incoming_call(routes_stack.server, to=AGENT_NUMBER)
    register_call(twilio_rest, call_sid, to=AGENT_NUMBER, from_="+447700900123")
    session = CallSession.objects.get(call_sid=call_sid)

    async def scenario() -> None:
        phone = await answered_call(routes_stack.server, call_sid, twiml)
        listening = asyncio.create_task(phone.listen())
        await phone.send("dtmf", dtmf={"track": "inbound_track", "digit": "0"})
        await asyncio.wait_for(listening, 60)

    asyncio.run(scenario())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not updates_of(twilio_rest, call_sid):
        time.sleep(0.2)
    updates = updates_of(twilio_rest, call_sid)
    assert len(updates) == 1, updates  # transferred, not hung up
    assert f"<Dial>{TRANSFER_TO}</Dial>" in updates[0]
    assert twilio_rest.options["calls"][call_sid]["twiml"].endswith(
        f"<Dial>{TRANSFER_TO}</Dial></Response>"
    )
    session.refresh_from_db()
    assert (session.status, session.end_reason) == ("ended", "transferred")
    user_turn = Turn.objects.get(session=session, speaker="user")
    assert user_turn.text == keypad_text("0")
    agent_turn = Turn.objects.get(session=session, speaker="agent")
    assert (agent_turn.intent, agent_turn.text) == ("keypad", TRANSFER_LINE)


def updates_of(fake, call_sid: str) -> list[str]:
    """The form bodies of the REST updates of ``call_sid`` the fake received."""
    return [
        unquote_plus(r.body.decode())
        for r in fake.requests
        if r.path.endswith(f"/Calls/{call_sid}.json")
    ]
