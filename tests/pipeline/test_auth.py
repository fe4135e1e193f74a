"""Who may open a call's WebSocket: the ways to authenticate, origins, close codes.

Runs against a real daphne process (tests/pipeline/conftest.py) with a real
WebSocket client.
"""

import asyncio
import contextlib
import uuid

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus

from calls.services import end_session

from .wire import close_code, next_event, open_socket, send_json

pytestmark = pytest.mark.e2e


def test_bearer_header_token_connects_and_gets_ready(daphne_server, make_call):
    call = make_call(name="Header agent")

    async def scenario():
        async with await open_socket(daphne_server.ws_url(call.session_id), token=call.token) as ws:
            return await next_event(ws)

    ready = asyncio.run(scenario())
    assert ready == {
        "type": "ready",
        "session_id": call.session_id,
        "agent": {"id": call.agent.id, "name": "Header agent"},
        "input": {"encoding": "pcm_s16le", "sample_rate": 16000},
        "output": {"encoding": "pcm_s16le", "sample_rate": 22050},
    }


def ticket_url(call, client: Client | None = None) -> str:
    """``ws_url`` of ``POST /api/sessions/{id}/ticket`` as the call's user."""
    response = (client or Client()).post(
        f"/api/sessions/{call.session_id}/ticket", HTTP_AUTHORIZATION=f"Bearer {call.token}"
    )
    assert response.status_code == 201, response.content
    return response.json()["ws_url"]


def test_ticket_connects_once_without_origin_or_header(daphne_server, make_call):
    call = make_call()
    # The API's URL names the test client's host; the socket is the live server's.
    url = daphne_server.ws_url(call.session_id) + "?" + ticket_url(call).split("?", 1)[1]

    async def scenario():
        async with await open_socket(url) as ws:
            first = (await next_event(ws))["type"]
        again = await open_socket(url)
        return first, await close_code(again)

    assert asyncio.run(scenario()) == ("ready", 4401)


def test_ticket_of_another_session_is_refused(daphne_server, make_call):
    call, other = make_call(), make_call()
    query = ticket_url(other).split("?", 1)[1]

    async def scenario():
        ws = await open_socket(daphne_server.ws_url(call.session_id) + "?" + query)
        return await close_code(ws)

    assert asyncio.run(scenario()) == 4401


def test_a_jwt_in_the_url_is_refused(daphne_server, make_call):
    """URLs land in proxy access logs: an access token there would be usable by anyone."""
    call = make_call()

    async def scenario():
        ws = await open_socket(daphne_server.ws_url(call.session_id, token=call.token))
        return await close_code(ws)

    assert asyncio.run(scenario()) == 4401


def test_token_minted_before_a_password_change_is_refused(daphne_server, make_call):
    call = make_call()
    call.user.set_password("a-brand-new-password-77")
    call.user.save()

    async def scenario():
        ws = await open_socket(daphne_server.ws_url(call.session_id), token=call.token)
        return await close_code(ws)

    assert asyncio.run(scenario()) == 4401


def test_session_cookie_from_same_origin_connects(daphne_server, make_call):
    call = make_call()
    browser = Client()
    browser.force_login(call.user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"

    async def scenario():
        url = daphne_server.ws_url(call.session_id)
        async with await open_socket(url, cookie=cookie, origin=daphne_server.url) as ws:
            return (await next_event(ws))["type"]

    assert asyncio.run(scenario()) == "ready"


def test_foreign_origin_is_refused_at_handshake(daphne_server, make_call):
    call = make_call()
    url = daphne_server.ws_url(call.session_id)

    async def scenario():
        await open_socket(url, token=call.token, origin="https://evil.example.com")

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(scenario())
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("token", [None, "not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.bad-signature"])
def test_missing_or_wrong_token_closes_4401(daphne_server, make_call, token):
    call = make_call()

    async def scenario():
        ws = await open_socket(daphne_server.ws_url(call.session_id), token=token)
        return await close_code(ws)

    assert asyncio.run(scenario()) == 4401


def test_wrong_token_wins_over_valid_cookie(daphne_server, make_call):
    call = make_call()
    browser = Client()
    browser.force_login(call.user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"

    async def scenario():
        url = daphne_server.ws_url(call.session_id)
        ws = await open_socket(url, token="garbage", cookie=cookie, origin=daphne_server.url)
        return await close_code(ws)

    assert asyncio.run(scenario()) == 4401


def test_other_users_session_closes_4403(daphne_server, make_call):
    owner = make_call()
    stranger = make_call()

    async def scenario():
        ws = await open_socket(daphne_server.ws_url(owner.session_id), token=stranger.token)
        return await close_code(ws)

    assert asyncio.run(scenario()) == 4403


@pytest.mark.parametrize("session_id", [uuid.uuid4(), "not-a-uuid"])
def test_unknown_session_closes_4404(daphne_server, make_call, session_id):
    call = make_call()

    async def scenario():
        ws = await open_socket(daphne_server.ws_url(session_id), token=call.token)
        return await close_code(ws)

    assert asyncio.run(scenario()) == 4404


def test_ended_session_closes_4409(daphne_server, make_call):
    call = make_call()
    end_session(call.session, "hangup")

    async def scenario():
        ws = await open_socket(daphne_server.ws_url(call.session_id), token=call.token)
        return await close_code(ws)

    assert asyncio.run(scenario()) == 4409


def test_second_connection_closes_4409_and_first_goes_on(daphne_server, make_call):
    call = make_call()
    url = daphne_server.ws_url(call.session_id)

    async def scenario():
        async with await open_socket(url, token=call.token) as first:
            await next_event(first, "ready")
            second = await open_socket(url, token=call.token)
            code = await close_code(second)
            await send_json(first, type="ping")
            return code, (await next_event(first))["type"]

    assert asyncio.run(scenario()) == (4409, "pong")


def test_reconnect_after_close_is_allowed(daphne_server, make_call):
    call = make_call()
    url = daphne_server.ws_url(call.session_id)

    async def scenario():
        async with await open_socket(url, token=call.token) as ws:
            await next_event(ws, "ready")
        async with await open_socket(url, token=call.token) as ws:
            return (await next_event(ws))["type"]

    assert asyncio.run(scenario()) == "ready"


def test_audio_before_authentication_is_not_processed(daphne_server, make_call):
    call = make_call()

    async def scenario():
        ws = await open_socket(daphne_server.ws_url(call.session_id))
        # The server may already have closed; what it sent is what counts.
        with contextlib.suppress(ConnectionClosed):
            await ws.send(b"\0" * 640)
            await ws.send('{"type": "text", "text": "hello"}')
        return await close_code(ws)

    assert asyncio.run(scenario()) == 4401
    assert not call.session.turns.exists()
