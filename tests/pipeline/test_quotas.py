"""Per-user quotas on live calls, against a real daphne with real workers.

One daphne allows each user ``LIVE_CALLS`` live calls and ``TURNS_PER_MINUTE``
caller turns a minute across all of them; classify, respond and tts workers
on the instant engines answer the turns it lets through (``instant_stack``), so a
turn that runs is one the caller hears answered.
"""

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from calls.models import Turn
from workers.engines.instant import REPLY

from .conftest import Call, LiveServer, wait_until_disconnected
from .instant_stack import InstantStack, start_instant_stack
from .test_protocol import speech_16k
from .wire import close_frame, next_event, open_socket, send_json, stream_realtime

pytestmark = pytest.mark.e2e

LIVE_CALLS = 2
TURNS_PER_MINUTE = 3


@pytest.fixture(scope="module")
def quota_stack(
    live_server_factory: Callable[..., LiveServer], live_log_dir: Path
) -> Iterator[InstantStack]:
    with start_instant_stack(
        live_server_factory,
        live_log_dir,
        ("classify", "respond", "tts"),  # what a typed turn goes through
        tag="-quotas",
        VOICE_MAX_ACTIVE_CALLS_PER_USER=str(LIVE_CALLS),
        VOICE_TURNS_PER_MINUTE=str(TURNS_PER_MINUTE),
    ) as stack:
        yield stack


def let_go(stack: InstantStack, *calls: Call) -> None:
    """Wait until the server released these calls' sockets (their presence keys)."""
    with override_settings(REDIS_URL=stack.redis_url):
        wait_until_disconnected([call.session_id for call in calls])


async def connected(server: LiveServer, call: Call):
    ws = await open_socket(server.ws_url(call.session_id), token=call.token)
    await next_event(ws, "ready")
    return ws


async def answered(ws, text: str) -> str:
    """Send a typed turn; the text of the agent's complete reply to it."""
    await send_json(ws, type="text", text=text)
    reply = await next_event(ws, "response.done")
    await next_event(ws, "metrics")  # the reply's last event
    return reply["text"]


async def pong_is_next(ws) -> bool:
    await send_json(ws, type="ping")
    return (await next_event(ws))["type"] == "pong"


def test_a_connection_past_the_users_live_calls_closes_4429(
    quota_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    first = make_call()
    second, third = make_call(user=first.user), make_call(user=first.user)
    stranger = make_call()
    server = quota_stack.server

    async def refused_while_two_are_live():
        async with await connected(server, first), await connected(server, second):
            ws = await open_socket(server.ws_url(third.session_id), token=third.token)
            error = await next_event(ws)
            closed = await close_frame(ws)
            # Another user's call is admitted as usual.
            async with await connected(server, stranger) as other:
                assert await pong_is_next(other)
            return error, closed

    error, (code, reason) = asyncio.run(refused_while_two_are_live())
    message = (
        "You already have 2 active calls, the most one user may have at once. "
        "End one of them first."
    )
    assert error == {"type": "error", "code": "quota_exceeded", "message": message}
    assert (code, reason) == (4429, message)

    # Once the user's calls have ended, no lock-out remains: the third one connects.
    let_go(quota_stack, first, second, stranger)

    async def admitted() -> bool:
        async with await connected(server, third) as ws:
            return await pong_is_next(ws)

    assert asyncio.run(admitted())
    let_go(quota_stack, third)


def test_turns_past_the_users_minute_quota_are_refused_across_sockets(
    quota_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    one = make_call()
    two = make_call(user=one.user)
    neighbour = make_call()
    server = quota_stack.server
    speech = speech_16k()
    silence = bytes(16000 * 2)  # one second at 16 kHz

    async def scenario():
        async with (
            await connected(server, one) as ws_one,
            await connected(server, two) as ws_two,
            await connected(server, neighbour) as ws_neighbour,
        ):
            # Three turns a minute for the user, whichever socket they come from.
            replies = [
                await answered(ws_one, "First question"),
                await answered(ws_two, "Second question"),
                await answered(ws_one, "Third question"),
            ]
            await send_json(ws_two, type="text", text="Fourth question")
            typed_refusal = await next_event(ws_two)
            two_goes_on = await pong_is_next(ws_two)  # no reply came before the pong
            # A spoken utterance counts the same.
            await stream_realtime(ws_one, silence[:16000] + speech + silence, 16000)
            await next_event(ws_one, "speech.stopped")
            spoken_refusal = await next_event(ws_one)
            # Another user's turns are not touched by this user's quota.
            neighbour_reply = await answered(ws_neighbour, "Hello there")
            return replies, typed_refusal, two_goes_on, spoken_refusal, neighbour_reply

    replies, typed_refusal, two_goes_on, spoken_refusal, neighbour_reply = asyncio.run(scenario())
    let_go(quota_stack, one, two, neighbour)

    assert replies == [REPLY, REPLY, REPLY]
    for refusal in (typed_refusal, spoken_refusal):
        assert refusal["type"] == "error", refusal
        assert refusal["code"] == "quota_exceeded"
        assert "took 3 turns within the last minute" in refusal["message"]
    assert two_goes_on
    assert neighbour_reply == REPLY
    user_turns = Turn.objects.filter(session__user=one.user, speaker=Turn.Speaker.USER)
    assert sorted(user_turns.values_list("text", flat=True)) == [
        "First question",
        "Second question",
        "Third question",
    ]
