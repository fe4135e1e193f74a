"""Talk to an agent from the command line: stream a WAV file, save the spoken reply.

    python examples/voice_client.py question.wav --agent 3 \\
        --username demo --password demo-pass-1234 --out reply.wav

Logs in (``POST /api/auth/login``), starts a call session
(``POST /api/agents/{id}/sessions``), opens the session's WebSocket with the
access token, streams the WAV (PCM16 mono at 8, 16, 24, 44.1 or 48 kHz) at
real-time pace followed by silence, as a microphone would (speaking over a
greeting interrupts it, as a caller would), prints every event and writes the
agent's answer audio to ``--out``. Needs only ``httpx`` and
``websockets``; the protocol is described in docs/protocol.md.
"""

import argparse
import asyncio
import json
import sys
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

FRAME_MS = 20


def read_wav(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            sys.exit(f"{path}: need 16-bit mono PCM, got {wav.getnchannels()} ch")
        return wav.readframes(wav.getnframes()), wav.getframerate()


def open_session(base_url: str, username: str, password: str, agent_id: int) -> tuple[str, str]:
    """Log in and start a session; the WebSocket URL and the access token."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        login = http.post("/api/auth/login", json={"username": username, "password": password})
        login.raise_for_status()
        token = login.json()["access"]
        session = http.post(
            f"/api/agents/{agent_id}/sessions", headers={"Authorization": f"Bearer {token}"}
        )
        session.raise_for_status()
        ws_url = session.json()["ws_url"]
    if ws_url.startswith("/"):
        ws_url = base_url.replace("http", "ws", 1).rstrip("/") + ws_url
    return ws_url, token


async def microphone(ws: ClientConnection, pcm: bytes, rate: int, done: asyncio.Event) -> None:
    """Send the file, then silence, at real-time pace until the reply is done."""
    size = rate * FRAME_MS // 1000 * 2
    silence = b"\0" * size
    loop = asyncio.get_running_loop()
    start, sent = loop.time(), 0
    while not done.is_set():
        offset = sent * size
        frame = pcm[offset : offset + size] if offset < len(pcm) else silence
        await ws.send(frame.ljust(size, b"\0"))
        sent += 1
        await asyncio.sleep(max(0.0, start + sent * FRAME_MS / 1000 - loop.time()))


async def talk(
    ws_url: str,
    token: str,
    pcm: bytes,
    rate: int,
    out: Path,
    on_event: Callable[[dict[str, Any]], None] = print,
) -> None:
    """Stream ``pcm`` as one caller turn; write the answer's audio to ``out``."""
    reply = bytearray()
    out_rate = 22050
    audio_turn = 0
    done = asyncio.Event()
    async with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": rate}))
        mic: asyncio.Task[None] | None = None
        async for message in ws:
            if isinstance(message, bytes):
                if audio_turn > 0:  # the answer, not the greeting (turn 0)
                    reply.extend(message)
                continue
            event = json.loads(message)
            on_event(event)
            kind = event["type"]
            if kind == "ready":
                mic = asyncio.create_task(microphone(ws, pcm, rate, done))
            elif kind == "audio.start":
                audio_turn, out_rate = event["turn_id"], event["sample_rate"]
            elif kind == "response.done" and event["turn_id"] > 0:
                done.set()
                await ws.send(json.dumps({"type": "end"}))
            elif kind == "ended":
                break
        done.set()
        if mic is not None:
            await mic
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(out_rate)
        wav.writeframes(bytes(reply))
    print(f"wrote {len(reply) / 2 / out_rate:.1f} s of reply audio to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wav", type=Path)
    parser.add_argument("--agent", type=int, required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path("reply.wav"))
    args = parser.parse_args()
    pcm, rate = read_wav(args.wav)
    ws_url, token = open_session(args.base_url, args.username, args.password, args.agent)
    asyncio.run(talk(ws_url, token, pcm, rate, args.out))


if __name__ == "__main__":
    main()
