"""Agent tools end to end on the instant stack: a real WebSocket client ↔ real
daphne ↔ real Celery workers (``VOICE_LLM=instant``: it calls the tool whose
name the caller says, with the words after each parameter's name as
arguments), and a real HTTP server standing in for the operator's system.

The stack allows ``127.0.0.1`` in ``TOOLS_ALLOWED_HOSTS`` (the operator server
listens there); ``localhost`` resolves to the same address but is not listed,
so it is refused as a private address. Tokens stream at 100 ms, so a tool
call takes over a second to "generate": time for the interrupt test to barge in.
"""

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.test import override_settings

from calls.models import Turn
from tests.fakes.operator import operator_server
from tests.fakes.server import FakeServer
from voiceproj.celery import app as celery_app
from voiceproj.pipeline import FAREWELL_LINE, REPLY_TASK, TRANSFER_LINE, tool_call_key
from workers.engines.instant import REPLY
from workers.tools.speech import DEFAULT_FAILURE_LINE, FAILURE_LINES

from .conftest import Call, LiveServer, wait_until_disconnected
from .instant_stack import InstantStack, start_instant_stack
from .test_e2e import api_turns, of_type, record_turn, talk
from .wire import next_event, open_socket, send_json

pytestmark = pytest.mark.e2e

ASK = "Please check order, order id 4711."


@pytest.fixture(scope="module")
def tools_stack(
    live_server_factory: Callable[..., LiveServer], live_log_dir: Path
) -> Iterator[InstantStack]:
    with start_instant_stack(
        live_server_factory,
        live_log_dir,
        ("classify", "respond", "tts"),
        tag="-tools",
        TOOLS_ALLOWED_HOSTS="127.0.0.1",
        INSTANT_TOKEN_MS="100",
    ) as stack:
        yield stack


@pytest.fixture
def operator() -> Iterator[FakeServer]:
    server = operator_server()
    server.slow_s = 5.0
    yield server
    server.close()


def check_order(url: str, timeout_s: float = 5.0) -> dict:
    return {
        "name": "check_order",
        "description": "Look up the delivery status of an order.",
        "url": url,
        "method": "POST",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "pattern": "^[0-9]+$"}},
            "required": ["order_id"],
        },
        "headers": {"X-Api-Key": "secret-key"},
        "timeout_s": timeout_s,
    }


def agent_turn(call: Call, turn_id: int) -> Turn:
    return Turn.objects.get(session=call.session, turn_id=turn_id, speaker="agent")


def test_tool_is_called_with_the_callers_words_and_its_result_is_spoken(
    tools_stack: InstantStack, operator: FakeServer, make_call: Callable[..., Call]
) -> None:
    call = make_call(tools=[check_order(f"{operator.url}/orders")])
    [events] = talk(tools_stack, call, ASK)

    assert of_type(events, "tool.call")[0] == {
        "type": "tool.call",
        "turn_id": events[0]["turn_id"],
        "name": "check_order",
        "arguments": {"order_id": "4711"},
    }
    assert of_type(events, "tool.result")[0]["ok"] is True
    assert of_type(events, "response.done")[0]["text"] == "Order 4711 has shipped."
    [request] = operator.requests
    assert (request.method, request.path) == ("POST", "/orders")
    assert request.json() == {"order_id": "4711"}
    assert request.headers["x-api-key"] == "secret-key"

    [audit] = agent_turn(call, events[0]["turn_id"]).tool_calls
    assert audit["name"] == "check_order" and audit["status"] == "ok"
    assert audit["arguments"] == {"order_id": "4711"}
    assert "4711" in audit["result"]
    listed = [t for t in api_turns(tools_stack.server, call) if t["speaker"] == "agent"]
    assert listed[0]["tool_calls"][0]["status"] == "ok"


def test_a_hanging_tool_gets_an_apology_and_the_call_goes_on(
    tools_stack: InstantStack, operator: FakeServer, make_call: Callable[..., Call]
) -> None:
    call = make_call(tools=[check_order(f"{operator.url}/slow", timeout_s=0.5)])
    slow, after = talk(tools_stack, call, ASK, "What time do you open?")

    assert of_type(slow, "tool.result")[0]["ok"] is False
    assert of_type(slow, "response.done")[0]["text"] == FAILURE_LINES["timeout"]
    assert of_type(after, "response.done")[0]["text"] == REPLY
    assert agent_turn(call, slow[0]["turn_id"]).tool_calls[0]["status"] == "timeout"


def test_a_private_address_not_in_the_allowed_hosts_is_refused(
    tools_stack: InstantStack, operator: FakeServer, make_call: Callable[..., Call]
) -> None:
    private = operator.url.replace("127.0.0.1", "localhost")
    call = make_call(tools=[check_order(f"{private}/orders")])
    [events] = talk(tools_stack, call, ASK)

    assert operator.requests == []
    assert of_type(events, "tool.result")[0]["ok"] is False
    assert of_type(events, "response.done")[0]["text"] == DEFAULT_FAILURE_LINE
    audit = agent_turn(call, events[0]["turn_id"]).tool_calls[0]
    assert audit["status"] == "blocked_address"
    assert "TOOLS_ALLOWED_HOSTS" in audit["result"]


def test_arguments_that_break_the_schema_are_never_sent(
    tools_stack: InstantStack, operator: FakeServer, make_call: Callable[..., Call]
) -> None:
    call = make_call(tools=[check_order(f"{operator.url}/orders")])
    [events] = talk(tools_stack, call, "Please check order, order id ABC.")

    assert operator.requests == []
    assert of_type(events, "response.done")[0]["text"] == FAILURE_LINES["bad_arguments"]
    assert agent_turn(call, events[0]["turn_id"]).tool_calls[0]["status"] == "bad_arguments"


def test_an_interrupted_turn_does_not_call_its_tool(
    tools_stack: InstantStack, operator: FakeServer, make_call: Callable[..., Call]
) -> None:
    call = make_call(tools=[check_order(f"{operator.url}/orders")])

    async def scenario() -> list[dict]:
        async with await open_socket(tools_stack.server.ws_url(call.session_id), call.token) as ws:
            await next_event(ws, "ready")
            await send_json(ws, type="text", text=ASK)
            # The intent is known while the tool call is still being generated.
            await next_event(ws, "intent")
            await send_json(ws, type="interrupt")
            await next_event(ws, "interrupted")
            # One respond worker: this turn is answered only after the
            # interrupted one's task has finished.
            await send_json(ws, type="text", text="What time do you open?")
            return (await record_turn(ws))[1]

    after = asyncio.run(scenario())
    with override_settings(REDIS_URL=tools_stack.redis_url):
        wait_until_disconnected([call.session_id])

    assert of_type(after, "response.done")[0]["text"] == REPLY
    assert operator.requests == []
    assert not of_type(after, "tool.call")


def wait_for_task(stack: InstantStack, task_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while f"[{task_id}] ran for" not in stack.workers.log("respond"):
        assert time.monotonic() < deadline, stack.workers.log("respond")[-3000:]
        time.sleep(0.1)


def test_the_same_turn_run_twice_calls_the_operator_once(
    tools_stack: InstantStack, operator: FakeServer, make_call: Callable[..., Call]
) -> None:
    """A job delivered again (a redelivery after a lost ack, or a duplicate
    publish under another task id, which the task claim cannot catch) reuses
    the stored outcome of the turn's tool call instead of calling again."""
    call = make_call(tools=[check_order(f"{operator.url}/orders")])
    job = {
        "session_id": call.session_id,
        "channel_name": "tools-test.redelivery",
        "turn_id": 0,  # the current turn of a call nobody has spoken in yet
        "agent": call.agent.pipeline_config(),
        "t0": time.time(),
    }
    with celery_app.connection_for_write(tools_stack.redis_url) as connection:
        for _ in range(2):
            task_id = str(uuid.uuid4())
            celery_app.send_task(
                REPLY_TASK, args=[job], kwargs={"text": ASK}, task_id=task_id, connection=connection
            )
            wait_for_task(tools_stack, task_id)

    assert len(operator.requests) == 1
    assert agent_turn(call, 0).tool_calls[0]["status"] == "ok"
    with redis.Redis.from_url(tools_stack.redis_url) as client:
        assert client.exists(tool_call_key(call.session_id, 0, 0))


def test_the_transfer_built_in_hands_off_to_the_operators_number(
    tools_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    call = make_call(tools=[{"name": "transfer_call", "to": "+15551234567"}])
    [events] = talk(tools_stack, call, "Transfer call to a human, to +19995550000 please.")

    assert of_type(events, "tool.call")[0]["name"] == "transfer_call"
    assert of_type(events, "handoff")[0]["to"] == "+15551234567"  # never the caller's number
    assert of_type(events, "response.done")[0]["text"] == TRANSFER_LINE


def test_the_end_call_built_in_says_goodbye_and_ends_the_call(
    tools_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    call = make_call(tools=[{"name": "end_call"}])

    async def scenario() -> list[dict]:
        async with await open_socket(tools_stack.server.ws_url(call.session_id), call.token) as ws:
            await next_event(ws, "ready")
            await send_json(ws, type="text", text="That is all, end call now.")
            return (await record_turn(ws, until="ended"))[1]

    events = asyncio.run(scenario())
    with override_settings(REDIS_URL=tools_stack.redis_url):
        wait_until_disconnected([call.session_id])

    assert of_type(events, "tool.result")[0] == {
        "type": "tool.result",
        "turn_id": events[0]["turn_id"],
        "name": "end_call",
        "ok": True,
    }
    assert of_type(events, "response.done")[0]["text"] == FAREWELL_LINE
    assert of_type(events, "ended")[0]["reason"] == "farewell"
    call.session.refresh_from_db()
    assert call.session.status == "ended"


def test_a_tool_route_calls_its_tool_with_the_callers_words(
    tools_stack: InstantStack, operator: FakeServer, make_call: Callable[..., Call]
) -> None:
    """The intent decides (routes.order_status → check_order), not the model's own choice."""
    call = make_call(
        intents=[
            {"name": "question", "description": "asks something"},
            {"name": "order_status", "description": "asks where an order is"},
        ],
        tools=[check_order(f"{operator.url}/orders")],
        routes={"order_status": {"action": "tool", "tool": "check_order"}},
    )
    [events] = talk(tools_stack, call, "My order status: check order, order id 4711.")

    assert of_type(events, "intent")[0]["intent"] == "order_status"
    assert of_type(events, "tool.call")[0]["arguments"] == {"order_id": "4711"}
    assert of_type(events, "response.done")[0]["text"] == "Order 4711 has shipped."
    [request] = operator.requests
    assert request.json() == {"order_id": "4711"}
    [audit] = agent_turn(call, events[0]["turn_id"]).tool_calls
    assert audit["status"] == "ok"
