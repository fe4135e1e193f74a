"""A thin real WebSocket client for the pipeline tests (``websockets`` library).

Tests are synchronous (no asyncio plugin): each test runs its coroutine with
``asyncio.run``. Every wait has a timeout so a broken server fails the test
instead of hanging it.
"""

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

TIMEOUT_S = 10.0


async def open_socket(
    url: str,
    token: str | None = None,
    cookie: str | None = None,
    origin: str | None = None,
) -> ClientConnection:
    """Connect; ``token`` goes in ``Authorization: Bearer``, ``cookie`` as ``Cookie``."""
    headers: dict[str, str] = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        headers["Cookie"] = cookie
    return await connect(
        url, additional_headers=headers, origin=origin, max_size=None, open_timeout=TIMEOUT_S
    )


async def next_event(
    ws: ClientConnection, type_: str | None = None, timeout: float = TIMEOUT_S
) -> dict[str, Any]:
    """The next JSON event (of ``type_`` when given), skipping binary audio."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.recv()
            if isinstance(message, bytes):
                continue
            data = json.loads(message)
            if type_ is None or data["type"] == type_:
                return data


async def send_json(ws: ClientConnection, **message: Any) -> None:
    await ws.send(json.dumps(message))


async def close_code(ws: ClientConnection, timeout: float = TIMEOUT_S) -> int | None:
    """Read until the server closes; the close code it sent."""
    code, _ = await close_frame(ws, timeout)
    return code


async def close_frame(ws: ClientConnection, timeout: float = TIMEOUT_S) -> tuple[int | None, str]:
    """Read until the server closes; the code and reason of its close frame."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")


def frames(pcm16: bytes, sample_rate: int, ms: int = 20) -> list[bytes]:
    """Split PCM16 audio into frames of ``ms`` milliseconds (the last one padded)."""
    size = sample_rate * ms // 1000 * 2
    chunks = [pcm16[i : i + size] for i in range(0, len(pcm16), size)]
    if chunks and len(chunks[-1]) < size:
        chunks[-1] = chunks[-1] + b"\0" * (size - len(chunks[-1]))
    return chunks


async def stream_realtime(
    ws: ClientConnection, pcm16: bytes, sample_rate: int, ms: int = 20
) -> None:
    """Send audio at real-time pace, as a microphone would."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, frame in enumerate(frames(pcm16, sample_rate, ms)):
        await ws.send(frame)
        delay = start + (i + 1) * ms / 1000 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
