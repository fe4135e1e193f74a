"""Latency of the phone path beside protocol v1: end of the caller's speech → first reply audio.

Usage::

    python -m bench.phone --turns N [--engines instant|local] [--json PATH]

Starts its own stack (``bench.stack``: a private redis-server, a fresh SQLite
file migrated as ``make run`` does, daphne through ``voiceproj.serve`` and one
prefork worker per pipeline queue) without ``TWILIO_AUTH_TOKEN`` and with
``DEBUG`` on, so the voice webhook takes unsigned requests as it does for local
testing (docs/telephony.md). Creates a user, an agent with a phone number and
one protocol v1 session per call through the REST API (``bench.load``).

The caller says one question, spoken once by the local Piper voice and trimmed
so that it ends on its last voiced 20 ms frame. A warm-up round (round 0,
left out of the figures: the first turn through each worker loads or primes
its engine) and then each of the N rounds makes one call on each transport,
the first of the two alternating from round to round:

* **protocol v1** (``/ws/voice/<id>/``, Bearer JWT): the question as binary
  PCM16 16 kHz frames of 20 ms at real-time pace, then silence; the figure
  ends at the first binary audio frame of the reply.
* **Twilio Media Streams**: the voice webhook answers an inbound call with
  TwiML; the bench opens its ``<Connect><Stream>`` URL with its
  ``<Parameter>``\\ s as Twilio does (``connected``, ``start``), sends the same
  question as base64 μ-law 8 kHz ``media`` messages of 20 ms at real-time
  pace, then μ-law silence; the figure ends at the first ``media`` message
  of the reply. The marks the server sends are not returned: the call hangs
  up (``stop``) once the reply is saved, before any playback would end.

Both figures start when the last voiced frame was sent, so both include the
endpointing: the server waits for ``VOICE_VAD_SILENCE_MS`` (600 ms) of silence
before it takes the utterance as finished. With ``--engines instant`` (the
default) the engines cost next to nothing and the figures are the platform's
own: endpointing, queues, channel layer and each transport's framing; the
instant STT is told the question per session (``announce``) so it has words
to answer. ``--engines local`` measures Whisper, SmolLM2 and Piper as well.

Prints a table (p50/p95/max per transport and their difference) and writes
JSON (default ``bench/results/phone-<engines>.json``). Exits 1 when a call got
no reply audio; the stack's logs are kept in that case.
"""

import argparse
import asyncio
import base64
import json
import logging
import os
import platform
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from statistics import quantiles
from typing import Any

import httpx
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.load import HTTP_TIMEOUT_S, QUESTIONS, Account, provision
from bench.soak import ENGINES, commit, save_result
from bench.speech import (
    SILENCE_ENDPOINTING,
    V1_SILENCE,
    VAD_SILENCE_MS,
    SendFrame,
    Utterance,
    caller_endpointer,
    speak,
    spoken_question,
)
from bench.stack import ROOT, start_stack
from calls.telephony.audio import FRAME_BYTES, MULAW_SILENCE
from calls.vad import Endpointer
from voiceproj.pipeline import FALLBACK_LINE
from workers.engines.instant import announce

# The caller's question: no farewell word (it would end the call), and a "?"
# that the instant classifier reads as a question.
QUESTION = QUESTIONS[0]
AGENT_NUMBER = "+14155550100"
CALLER_NUMBER = "+14155550123"
ACCOUNT_SID = "AC" + "0" * 32  # unsigned webhooks: only its form matters
# Local engines on 2 shared cores answer within seconds, a slow turn in tens.
REPLY_TIMEOUT_S = 120.0
# The server closes the socket within this long of a hang-up (v1 ``end``, ``stop``).
CLOSE_TIMEOUT_S = 10.0
POLL_S = 0.1  # how often the caller asks the REST API whether the reply was saved
PAUSE_S = 0.5  # between two calls, so one's teardown does not overlap the next


@dataclass
class Call:
    """One measured call, as the caller lived it."""

    round: int  # 0 for the warm-up round, then 1..N
    transport: str  # "v1" or "phone"
    session_id: str = ""
    speech_end: float | None = None  # monotonic: the last voiced frame was sent
    # monotonic, protocol v1 calls only: the server's endpointer had its silence
    # (bench.speech.caller_endpointer)
    vad_end: float | None = None
    first_audio: float | None = None  # monotonic: the first reply audio arrived
    server_first_audio_ms: int | None = None  # the saved turn's: end of utterance → audio out
    # monotonic, protocol v1 calls only: when the first event of each kind
    # arrived (``TIMED_EVENTS``; the final and the interim transcript apart)
    events_at: dict[str, float] = field(default_factory=dict)
    intent: str = ""  # the saved agent turn's
    classify_ms: int | None = None  # the saved agent turn's: the reply's wait for the intent
    transcript: str = ""
    reply: str = ""
    detail: str = ""  # why a call got no reply

    @property
    def latency_ms(self) -> float | None:
        """End of the caller's speech → first reply audio, on the caller's clock."""
        if self.speech_end is None or self.first_audio is None:
            return None
        return round((self.first_audio - self.speech_end) * 1000, 1)

    @property
    def endpointing_ms(self) -> float | None:
        """End of the caller's speech → the endpointer had its silence (v1 calls)."""
        if self.speech_end is None or self.vad_end is None:
            return None
        return round((self.vad_end - self.speech_end) * 1000, 1)

    def event_ms(self, kind: str) -> float | None:
        """End of the caller's speech → the first event of ``kind`` (protocol v1
        calls): ``speech.stopped`` is the server's endpointing, the words of a
        pause included, as the caller saw it."""
        if self.speech_end is None or kind not in self.events_at:
            return None
        return round((self.events_at[kind] - self.speech_end) * 1000, 1)

    @property
    def stopped_ms(self) -> float | None:
        return self.event_ms("speech.stopped")

    @property
    def intent_ms(self) -> float | None:
        return self.event_ms("intent")

    @property
    def fell_back(self) -> bool:
        return self.reply.endswith(FALLBACK_LINE)

    def row(self) -> dict[str, Any]:
        kept = ("round", "transport", "session_id", "server_first_audio_ms", "transcript")
        return {
            **{k: v for k, v in asdict(self).items() if k in kept},
            "latency_ms": self.latency_ms,
            "reply": self.reply,
            "detail": self.detail,
        }


IsAudio = Callable[[str | bytes], bool]


# The events whose first arrival a call notes; "transcript.interim" is a
# transcript with ``final: false``.
TIMED_EVENTS = ("speech.stopped", "transcript.interim", "transcript", "intent", "response.delta")


def timed_kind(message: str) -> str:
    """The ``TIMED_EVENTS`` name of a protocol v1 event."""
    event = json.loads(message)
    kind = str(event.get("type", ""))
    return "transcript.interim" if kind == "transcript" and not event.get("final") else kind


async def listen(ws: ClientConnection, is_audio: IsAudio, call: Call, heard: asyncio.Event) -> None:
    """Read everything the server sends until it closes; note when the first
    reply audio and the first of each ``TIMED_EVENTS`` arrived."""
    try:
        async for message in ws:
            if call.first_audio is None and is_audio(message):
                call.first_audio = time.monotonic()
                heard.set()
            elif isinstance(message, str) and '"type"' in message:
                kind = timed_kind(message)
                if kind in TIMED_EVENTS:
                    call.events_at.setdefault(kind, time.monotonic())
    except ConnectionClosed:
        pass


async def saved_reply(account: Account, call: Call) -> None:
    """Wait until the session's agent turn is saved (the reply is over); take its
    text and timing, and the caller's transcript, from the REST API."""
    while True:
        turns = await asyncio.to_thread(account.turns, call.session_id)
        agent = [t for t in turns if t["speaker"] == "agent" and t["text"]]
        if agent:
            call.reply = agent[-1]["text"]
            call.server_first_audio_ms = agent[-1]["first_audio_ms"]
            call.intent, call.classify_ms = agent[-1]["intent"], agent[-1]["classify_ms"]
            users = [t["text"] for t in turns if t["speaker"] == "user"]
            call.transcript = users[-1] if users else ""
            return
        await asyncio.sleep(POLL_S)


async def converse(
    ws: ClientConnection,
    account: Account,
    call: Call,
    send: SendFrame,
    is_audio: IsAudio,
    speech: Sequence[bytes],
    silence: bytes,
    hang_up: Callable[[], Awaitable[None]],
    endpointer: Endpointer | None = None,
) -> None:
    """Say the question on an open call, wait for the reply and its saved turn,
    then hang up and read until the server closes the socket."""
    heard, hung_up = asyncio.Event(), asyncio.Event()
    listener = asyncio.create_task(listen(ws, is_audio, call, heard))
    speaker = asyncio.create_task(
        speak(send, speech, silence, call, hung_up, endpointer=endpointer)
    )
    try:
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            await heard.wait()
            await saved_reply(account, call)
    except TimeoutError:
        awaited = "saved reply" if call.first_audio else "reply audio"
        call.detail = f"no {awaited} within {REPLY_TIMEOUT_S:.0f} s"
    finally:
        hung_up.set()
        with suppress(ConnectionClosed):  # the agent ended the call (a farewell)
            await speaker
    with suppress(ConnectionClosed):
        await hang_up()
    try:
        await asyncio.wait_for(listener, CLOSE_TIMEOUT_S)
    except TimeoutError:
        call.detail = call.detail or f"the server did not close within {CLOSE_TIMEOUT_S:.0f} s"


async def v1_call(
    base_ws: Callable[[str], str],
    account: Account,
    session: dict[str, Any],
    utterance: Utterance,
    announcer: redis.Redis | None,
    round_number: int,
) -> Call:
    """One protocol v1 call on ``session``: the question, the reply, ``end``."""
    call = Call(round_number, "v1", str(session["id"]))
    if announcer is not None:
        announce(announcer, call.session_id, utterance.text)
    headers = {"Authorization": f"Bearer {account.token}"}
    async with connect(
        base_ws(call.session_id),
        additional_headers=headers,
        max_size=None,
        open_timeout=HTTP_TIMEOUT_S,
    ) as ws:
        async with asyncio.timeout(HTTP_TIMEOUT_S):
            while True:
                message = await ws.recv()
                if isinstance(message, str) and json.loads(message)["type"] == "ready":
                    break

        async def hang_up() -> None:
            await ws.send(json.dumps({"type": "end"}))

        await converse(
            ws,
            account,
            call,
            ws.send,
            lambda message: isinstance(message, bytes),
            utterance.v1_frames(),
            V1_SILENCE,
            hang_up,
            caller_endpointer(),
        )
    return call


def inbound_call(base_url: str) -> tuple[str, str, dict[str, str]]:
    """Twilio's incoming-call webhook, unsigned: the call SID, the stream URL and
    the stream's parameters from the TwiML answer."""
    # The bench's own version of test_twilio_stream.py's ``incoming_call``, without
    # the signature (the stack has no auth token) and without pytest's asserts.
    call_sid = "CA" + uuid.uuid4().hex
    form = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": CALLER_NUMBER,
        "To": AGENT_NUMBER,
        "Direction": "inbound",
        "CallStatus": "ringing",
    }
    answer = httpx.post(f"{base_url}/telephony/twilio/voice", data=form, timeout=HTTP_TIMEOUT_S)
    if answer.status_code != 200:
        raise RuntimeError(f"the voice webhook answered {answer.status_code}: {answer.text}")
    stream = ET.fromstring(answer.text).find("./Connect/Stream")
    if stream is None or not stream.get("url"):
        raise RuntimeError(f"the voice webhook did not connect a stream: {answer.text}")
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return call_sid, str(stream.get("url")), parameters


async def phone_call(
    base_url: str,
    account: Account,
    utterance: Utterance,
    announcer: redis.Redis | None,
    round_number: int,
) -> Call:
    """One Twilio call: the webhook, then Media Streams as Twilio speaks it."""
    call_sid, url, parameters = await asyncio.to_thread(inbound_call, base_url)
    call = Call(round_number, "phone", parameters["session_id"])
    if announcer is not None:
        announce(announcer, call.session_id, utterance.text)
    stream_sid = "MZ" + uuid.uuid4().hex
    async with connect(url, max_size=None, open_timeout=HTTP_TIMEOUT_S) as ws:

        async def twilio(event: str, **fields: Any) -> None:
            await ws.send(json.dumps({"event": event, "streamSid": stream_sid, **fields}))

        async def media(payload: bytes) -> None:
            await twilio("media", media={"track": "inbound", "payload": b64(payload)})

        async def hang_up() -> None:
            await twilio("stop", stop={"accountSid": ACCOUNT_SID, "callSid": call_sid})

        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": ACCOUNT_SID,
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await twilio("start", start=start)
        await converse(
            ws,
            account,
            call,
            media,
            is_media,
            utterance.phone_frames(),
            bytes([MULAW_SILENCE]) * FRAME_BYTES,
            hang_up,
        )
    return call


def b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


def is_media(message: str | bytes) -> bool:
    """A Media Streams ``media`` message (the server's reply audio)."""
    return isinstance(message, str) and json.loads(message).get("event") == "media"


def give_number(account: Account, number: str) -> None:
    """``PATCH /api/agents/{id}``: the agent answers calls to ``number``."""
    response = httpx.patch(
        f"{account.base_url}/api/agents/{account.agent_id}",
        json={"phone_number": number},
        headers=account.headers,
        timeout=HTTP_TIMEOUT_S,
    )
    if response.status_code != 200:
        raise RuntimeError(f"PATCH agent answered {response.status_code}: {response.text}")


async def run_rounds(
    base_url: str,
    ws_url: Callable[[str], str],
    account: Account,
    utterance: Utterance,
    announcer: redis.Redis | None,
    rounds: int,
) -> list[Call]:
    """The warm-up round 0, then ``rounds`` rounds of one call per transport, v1
    first in even rounds; ``account`` has a session for each v1 call."""
    calls: list[Call] = []
    for number in range(rounds + 1):
        session = account.sessions[number]
        v1 = partial(v1_call, ws_url, account, session, utterance, announcer, number)
        phone = partial(phone_call, base_url, account, utterance, announcer, number)
        for make in (v1, phone) if number % 2 == 0 else (phone, v1):
            call = await make()
            calls.append(call)
            latency = f"{call.latency_ms} ms" if call.latency_ms is not None else call.detail
            label = f"round {call.round}" if call.round else "warm-up"
            print(f"{label:>8} {call.transport:>5}: {latency}", flush=True)
            await asyncio.sleep(PAUSE_S)
    return calls


def summary(values: list[float]) -> dict[str, float | int | None]:
    """p50, p95 and max of ``values`` in ms, and how many there are."""
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    cuts = quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {
        "p50": round(cuts[49], 1),
        "p95": round(cuts[94], 1),
        "max": round(max(values), 1),
        "n": len(values),
    }


def difference(
    phone: dict[str, float | int | None], v1: dict[str, float | int | None]
) -> dict[str, float | None]:
    """Each statistic of the phone path minus the same one of protocol v1."""
    out: dict[str, float | None] = {}
    for name in ("p50", "p95", "max"):
        a, b = phone[name], v1[name]
        out[name] = None if a is None or b is None else round(a - b, 1)
    return out


def figures(calls: list[Call], engines: str, rounds: int) -> dict[str, Any]:
    """The JSON result: both transports' figures, their difference and every call."""

    def of(transport: str) -> list[Call]:
        return [c for c in calls if c.transport == transport and c.round]

    def latencies(transport: str) -> list[float]:
        return [c.latency_ms for c in of(transport) if c.latency_ms is not None]

    def server(transport: str) -> list[float]:
        found = [c.server_first_audio_ms for c in of(transport)]
        return [float(ms) for ms in found if ms is not None]

    v1, phone = summary(latencies("v1")), summary(latencies("phone"))
    return {
        "engines": engines,
        "turns": rounds,
        "v1_first_audio_ms": v1,
        "phone_first_media_ms": phone,
        "phone_minus_v1_ms": difference(phone, v1),
        # End of speech → the server's endpointer had its silence (the caller
        # runs the same one over the same audio): the part of v1's figure that
        # is endpointing by design, webrtcvad's hang-over included.
        "v1_endpointing_ms": summary(
            [ms for c in of("v1") if (ms := c.endpointing_ms) is not None]
        ),
        # Both figures count from the last voiced frame, so they include the
        # silence the server waits for before it ends the utterance.
        "endpointing_silence_ms": VAD_SILENCE_MS,
        # The saved turns' first_audio_ms: the server's end of the utterance
        # (after that silence) → the first reply audio handed to the transport.
        "server_first_audio_ms": {"v1": summary(server("v1")), "phone": summary(server("phone"))},
        "missed": {t: sum(c.latency_ms is None for c in of(t)) for t in ("v1", "phone")},
        "fallbacks": {t: sum(c.fell_back for c in of(t)) for t in ("v1", "phone")},
        "calls": [c.row() for c in calls],  # round 0: the warm-up, not counted
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }


def report(result: dict[str, Any], utterance: Utterance) -> None:
    """Print the table of both transports and their difference."""
    print(
        f"\nphone path: {result['turns']} calls per transport on {result['engines']} engines; "
        f"end of speech ({utterance.seconds:.1f} s question) -> first reply audio, "
        f"{result['endpointing_silence_ms']} ms of endpointing included"
    )
    print(f"{'ms':<24} {'p50':>8} {'p95':>8} {'max':>8} {'n':>4}")
    rows = (
        ("protocol v1 (PCM16)", result["v1_first_audio_ms"]),
        ("Twilio (mu-law media)", result["phone_first_media_ms"]),
        ("phone - v1", {**result["phone_minus_v1_ms"], "n": ""}),
    )
    for label, stats in rows:
        cells = " ".join(
            f"{'-' if stats[k] is None else stats[k]:>8}" for k in ("p50", "p95", "max")
        )
        print(f"{label:<24} {cells} {stats['n']:>4}")
    for transport in ("v1", "phone"):
        if result["missed"][transport] or result["fallbacks"][transport]:
            print(
                f"{transport}: {result['missed'][transport]} calls without reply audio, "
                f"{result['fallbacks'][transport]} answered by the fallback line"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10, help="calls per transport")
    parser.add_argument("--engines", choices=sorted(ENGINES), default="instant")
    parser.add_argument("--json", type=Path, help="default bench/results/phone-<engines>.json")
    args = parser.parse_args()

    utterance = spoken_question(QUESTION)
    # Django's LOGGING (set up for Piper) would log every REST poll of the bench.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    work_dir = Path(tempfile.mkdtemp(prefix="voice-phone-"))
    # No auth token and DEBUG on: the voice webhook takes unsigned requests.
    try:
        with start_stack(
            work_dir,
            engines={**ENGINES[args.engines], **SILENCE_ENDPOINTING},
            DEBUG="true",
            TWILIO_AUTH_TOKEN="",
        ) as stack:
            account = provision(stack.server.url, args.turns + 1)
            give_number(account, AGENT_NUMBER)
            announcer = redis.Redis.from_url(stack.redis.url) if args.engines == "instant" else None
            calls = asyncio.run(
                run_rounds(
                    stack.server.url, stack.server.ws_url, account, utterance, announcer, args.turns
                )
            )
    except BaseException:
        print(f"logs kept in {work_dir}", file=sys.stderr)
        raise

    result = figures(calls, args.engines, args.turns)
    report(result, utterance)
    path = args.json or ROOT / "bench" / "results" / f"phone-{args.engines}.json"
    return save_result(result, path, work_dir, failed=any(result["missed"].values()))


if __name__ == "__main__":
    sys.exit(main())
