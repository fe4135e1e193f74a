"""The WebSocket transport limit against a real daphne started through voiceproj.serve.

A message over ``VOICE_MAX_WS_MESSAGE_BYTES`` (128 KiB) is refused on its frame
header: the client gets a close frame with 1009, the server never buffers the
message, and the same process goes on serving other calls. Messages up to the
protocol's largest valid one reach the consumer as before.
"""

import asyncio
import contextlib
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from .conftest import wait_until_disconnected
from .wire import close_code, next_event, open_socket, send_json

pytestmark = pytest.mark.e2e

MESSAGE_TOO_BIG = 1009
KIB = 1024
MIB = 1024 * KIB


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident memory (VmHWM): a buffered message shows here even if freed."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * KIB
    raise RuntimeError(f"no VmHWM for process {pid}")


async def rejected_with(server, call, message: bytes | str | Iterable[bytes]) -> int | None:
    """Send ``message`` on a fresh call; the close code the server answered it with."""
    ws = await open_socket(server.ws_url(call.session_id), token=call.token)
    await next_event(ws, "ready")
    # The server may close while the client is still sending: then read its close frame.
    with contextlib.suppress(ConnectionClosed):
        await ws.send(message)
    return await close_code(ws)


async def serves_a_call(server, call) -> None:
    """A call on ``server`` gets ``ready`` and answers a ping."""
    async with await open_socket(server.ws_url(call.session_id), token=call.token) as ws:
        await next_event(ws, "ready")
        await send_json(ws, type="ping")
        assert (await next_event(ws)) == {"type": "pong"}


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"\0" * (4 * MIB), id="4MiB-binary"),
        pytest.param(json.dumps({"type": "text", "text": "a" * 200 * KIB}), id="200KiB-text"),
        # Three frames of 64 KiB: each under the limit, the message over it.
        pytest.param([b"\0" * (64 * KIB)] * 3, id="192KiB-in-fragments"),
    ],
)
def test_an_oversized_message_closes_with_1009_and_the_server_serves_on(
    daphne_server, make_call, message
) -> None:
    rejected, next_caller = make_call(), make_call()

    code = asyncio.run(rejected_with(daphne_server, rejected, message))
    assert code == MESSAGE_TOO_BIG
    assert daphne_server.process.poll() is None
    # The session outlives its socket like after any drop: the caller may reconnect.
    wait_until_disconnected([rejected.session_id])
    asyncio.run(serves_a_call(daphne_server, rejected))
    asyncio.run(serves_a_call(daphne_server, next_caller))


def test_a_64mib_message_is_cut_at_its_header_without_buffering(daphne_server, make_call) -> None:
    pid = daphne_server.process.pid
    warm_up, rejected, next_caller = make_call(), make_call(), make_call()

    async def scenario() -> int:
        await serves_a_call(daphne_server, warm_up)  # imports and first-call caches done
        before = peak_rss_bytes(pid)
        assert await rejected_with(daphne_server, rejected, b"\0" * (64 * MIB)) == MESSAGE_TOO_BIG
        await serves_a_call(daphne_server, next_caller)
        return peak_rss_bytes(pid) - before

    growth = asyncio.run(scenario())
    # Buffered, the message alone would add 64 MiB; refused on the header, the
    # peak barely moves (socket buffers and the calls' own objects).
    assert growth < 8 * MIB, f"daphne's peak RSS grew by {growth / MIB:.1f} MiB"


def test_the_largest_valid_audio_frame_still_passes(daphne_server, make_call) -> None:
    call = make_call()

    async def scenario() -> list[dict]:
        async with await open_socket(daphne_server.ws_url(call.session_id), token=call.token) as ws:
            await next_event(ws, "ready")
            await send_json(ws, type="start", sample_rate=48000)
            await ws.send(b"\0" * 96000)  # 1000 ms at 48 kHz: the largest valid frame
            await send_json(ws, type="ping")
            events = []
            while not events or events[-1]["type"] != "pong":
                events.append(await next_event(ws))
            return events

    events = asyncio.run(scenario())
    assert [e for e in events if e["type"] == "error"] == []


def test_a_call_whose_socket_was_refused_while_answering_can_reconnect(
    daphne_server, make_call
) -> None:
    # Found by the protocol fuzzer: an answer sent after the transport refused
    # a message, while the socket was closing, made daphne raise in the
    # consumer, which died before `disconnect` stopped the call; its heartbeat
    # kept the session claimed, so a reconnect got 4409 until the call idled out.
    call = make_call()

    async def scenario() -> int | None:
        ws = await open_socket(daphne_server.ws_url(call.session_id), token=call.token)
        await next_event(ws, "ready")
        # One TCP write (websockets' sans-I/O layer): the server reads the bad
        # JSON and the oversized header at once and refuses the second before
        # it answers the first, while the rest of the 4 MiB keeps the socket
        # closing.
        ws.protocol.send_text(b"not json")
        ws.protocol.send_binary(b"\0" * (4 * MIB))
        ws.transport.write(b"".join(ws.protocol.data_to_send()))
        return await close_code(ws)

    assert asyncio.run(scenario()) == MESSAGE_TOO_BIG
    wait_until_disconnected([call.session_id])
    asyncio.run(serves_a_call(daphne_server, call))
    assert "Exception inside application" not in daphne_server.log()
