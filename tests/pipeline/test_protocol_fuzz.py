"""Property-based fuzzing of protocol v1 (docs/protocol.md) against a live stack.

Hypothesis sends arbitrary text and binary frames (random bytes, JSON of every
shape, known and unknown ``type``s with wrongly typed fields, huge numbers,
unicode, deep nesting, audio of odd lengths and rates, oversized and non-UTF-8
messages) to a real daphne on the instant engines, one fresh call per example.
The property: the server answers only with documented events, every ``error``
carries a code of ``ERROR_CODES`` that blames the input (never the server), the
socket closes only where docs/protocol.md says it does (1000 after ``end``,
1009 for a message over 128 KiB, 1007 for a text message that is not UTF-8) and
otherwise still answers ``ping``. Afterwards the server is alive, logged no
traceback, and a call that was connected beside the fuzzing all along still
gets its typed turn answered.

Bounded for CI: a fixed number of examples, derandomized (the same inputs on
every run) and no example database.
"""

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import redis
from django.test import override_settings
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from calls.models import CallSession
from calls.presence import presence_key
from calls.protocol import ALLOWED_INPUT_RATES, CLIENT_TYPES, ERROR_CODES, MAX_MESSAGE_BYTES
from calls.services import end_session
from workers.engines.instant import REPLY

from .conftest import Call, wait_until_disconnected
from .instant_stack import InstantStack
from .wire import TIMEOUT_S, next_event, open_socket, send_json

pytestmark = pytest.mark.e2e

# 40 calls of up to 8 messages: about 15 s on 2 cores (the stack's start and
# stop take as long again); enough to meet every kind of frame several times.
EXAMPLES = 40
MAX_FRAMES = 8
# voiceproj.serve's transport limit (VOICE_MAX_WS_MESSAGE_BYTES, default).
MAX_WS_MESSAGE_BYTES = 128 * 1024

# Server → client events of docs/protocol.md with exactly the fields each carries.
EVENT_FIELDS: dict[str, set[str]] = {
    "ready": {"session_id", "agent", "input", "output"},
    "pong": set(),
    "speech.started": {"turn_id"},
    "speech.stopped": {"turn_id"},
    "transcript": {"turn_id", "text", "final", "early"},
    "intent": {"turn_id", "intent"},
    "response.delta": {"turn_id", "text"},
    "audio.start": {"turn_id", "sample_rate"},
    "audio.end": {"turn_id"},
    "response.done": {"turn_id", "text", "interrupted"},
    "interrupted": {"turn_id"},
    "metrics": {"turn_id", "stt_ms", "classify_ms", "first_token_ms", "first_audio_ms", "total_ms"},
    "error": {"code", "message"},
    "ended": {"reason"},
}
# These codes say the server or a worker failed; on a healthy stack no input
# may cause them, so the fuzzer treats them as findings.
SERVER_FAILURES = {"internal_error", "service_unavailable", "pipeline_error", "turn_failed"}
INPUT_ERRORS = set(ERROR_CODES) - SERVER_FAILURES
# Closes by the WebSocket layer itself: message too big, text not UTF-8.
TRANSPORT_CLOSES = {1009, 1007}


class Frame:
    """One WebSocket message the fuzzer sends, and what docs/protocol.md promises for it."""

    def __init__(
        self,
        payload: str | bytes,
        text: bool,
        closes_with: int | None = None,
        pongs: bool = False,
    ) -> None:
        self.payload = payload
        self.text = text  # a text frame; a bytes payload then is deliberately not UTF-8
        self.closes_with = closes_with  # the close code this message earns
        self.pongs = pongs  # a ping the server must answer

    @property
    def breaks_transport(self) -> bool:
        """The WebSocket layer refuses it (1007, 1009): the connection is over at once."""
        return self.closes_with in TRANSPORT_CLOSES

    def __repr__(self) -> str:  # what Hypothesis prints for a failing example, kept short
        shown = self.payload if len(self.payload) <= 120 else self.payload[:120]
        kind = "text" if self.text else "binary"
        return f"Frame({kind}, {len(self.payload)} long: {shown!r})"


def json_frame(message: Any, ensure_ascii: bool) -> Frame:
    payload = json.dumps(message, ensure_ascii=ensure_ascii)
    size = len(payload.encode())
    if size > MAX_WS_MESSAGE_BYTES:
        return Frame(payload, text=True, closes_with=1009)
    parsed = size <= MAX_MESSAGE_BYTES and isinstance(message, dict)
    kind = message.get("type") if parsed else None
    return Frame(
        payload, text=True, closes_with=1000 if kind == "end" else None, pongs=kind == "ping"
    )


def text_frame(payload: str) -> Frame:
    too_big = len(payload.encode()) > MAX_WS_MESSAGE_BYTES
    return Frame(payload, text=True, closes_with=1009 if too_big else None)


def pcm_frame(rate: int, ms: int, odd: bool, seed: int, loud: bool) -> Frame:
    """``ms`` of PCM16 at ``rate``: noise loud enough to be speech, or silence."""
    samples = rate * ms // 1000
    if loud:
        noise = np.random.default_rng(seed).normal(0, 8000, samples)
        pcm = np.clip(noise, -32768, 32767).astype("<i2").tobytes()
    else:
        pcm = bytes(samples * 2)
    return Frame(pcm + b"\x01" * odd, text=False)


UNICODE = st.characters(exclude_categories=("Cs",))  # what a str over the wire can hold
short_texts = st.text(UNICODE, max_size=30)


def repeated(max_times: int) -> st.SearchStrategy[str]:
    """A short unicode snippet repeated up to ``max_times``: long strings, cheaply."""
    return st.builds(
        lambda snippet, times: snippet * times,
        st.text(UNICODE, min_size=1, max_size=3),
        st.one_of(st.integers(0, 100), st.integers(max_times // 4, max_times)),
    )


odd_numbers = st.one_of(
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1, 2**64, 1e308, -0.0, 1e-320, 16000.0]),
    st.builds(pow, st.just(10), st.integers(300, 4000)),  # up to Python's 4300-digit limit
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), odd_numbers, st.floats(), short_texts)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(short_texts, children, max_size=4)
    ),
    max_leaves=12,
)
sample_rates = st.one_of(
    st.sampled_from(ALLOWED_INPUT_RATES),
    st.integers(),
    st.sampled_from([8000.0, "16000", 15999, 96000, 1]),
    json_values,
)
typed_texts = st.one_of(
    short_texts,
    repeated(40_000),
    st.sampled_from(["", " \t\n", "\x00", "\u202e\u200b", "What time do you open?"]),
    json_values,
)
known_messages = st.one_of(
    st.fixed_dictionaries({"type": st.just("start")}, optional={"sample_rate": sample_rates}),
    st.fixed_dictionaries({"type": st.just("text")}, optional={"text": typed_texts}),
    st.fixed_dictionaries({"type": st.sampled_from(sorted(CLIENT_TYPES - {"start", "text"}))}),
)
# The unknown type is echoed in the error message: long and non-ASCII ones too.
unknown_messages = st.fixed_dictionaries({"type": st.one_of(json_values, repeated(30_000))})
messages = st.builds(
    lambda extra, message: {**extra, **message},
    st.dictionaries(short_texts, json_values, max_size=3),
    st.one_of(known_messages, known_messages, unknown_messages),
)
json_frames = st.one_of(
    st.builds(json_frame, messages, st.booleans()),
    st.builds(json_frame, json_values, st.booleans()),  # not an object at all
)
raw_text_frames = st.builds(
    text_frame,
    st.one_of(
        st.text(UNICODE, max_size=200),
        st.builds(lambda depth: "[" * depth, st.integers(1, 60_000)),
        st.builds(lambda depth: '{"type":' * depth, st.integers(1, 8000)),
        st.builds(
            lambda digits: '{"type":"start","sample_rate":1' + "0" * digits + "}",
            st.integers(0, 6000),
        ),
        st.builds(
            lambda pad: " " * pad + '{"type":"ping"}', st.sampled_from([65_530, 131_060, 131_100])
        ),
        st.sampled_from(
            [
                "",
                "NaN",
                "\ufeff{}",
                '{"type":"ping","type":"dance"}',
                '{"type":"text","text":"\\ud800"}',
            ]
        ),
    ),
)
binary_frames = st.one_of(
    st.builds(
        pcm_frame,
        rate=st.sampled_from(ALLOWED_INPUT_RATES),
        ms=st.integers(0, 1100),
        odd=st.booleans(),
        seed=st.integers(0, 2**32 - 1),
        loud=st.booleans(),
    ),
    st.builds(Frame, st.binary(max_size=600), st.just(False)),
)
protocol_breaches = st.one_of(
    # A text frame that is not UTF-8: the WebSocket rules close it with 1007.
    st.builds(
        lambda tail: Frame(b"\xff" + tail, text=True, closes_with=1007), st.binary(max_size=20)
    ),
    st.builds(
        lambda n: Frame(bytes(n), text=False, closes_with=1009), st.integers(131_073, 140_000)
    ),
)
frames = st.one_of(
    json_frames,
    json_frames,
    json_frames,
    raw_text_frames,
    binary_frames,
    binary_frames,
    protocol_breaches,
)


@dataclass
class Exchange:
    """What one fuzzed call saw: the JSON events, and the close code if it was closed."""

    events: list[dict[str, Any]] = field(default_factory=list)
    closed_with: int | None = None
    still_open: bool = False


async def fuzz_call(url: str, token: str, sent: list[Frame]) -> Exchange:
    """Send the frames, then a ping; read until every ping is answered or the socket closes.

    A client stops at a message the WebSocket layer refuses: the server has
    failed the connection, and what follows it would only race the close.
    """
    seen = Exchange()
    pongs_due = 1 + sum(frame.pongs for frame in sent)
    async with await open_socket(url, token) as ws:
        seen.events.append(await next_event(ws))
        try:
            for frame in sent:
                await ws.send(frame.payload, text=frame.text)
                if frame.breaks_transport:
                    break
            else:
                await send_json(ws, type="ping")
            async with asyncio.timeout(TIMEOUT_S):
                while pongs_due:
                    message = await ws.recv()
                    if isinstance(message, bytes):
                        continue
                    seen.events.append(json.loads(message))
                    pongs_due -= seen.events[-1]["type"] == "pong"
            seen.still_open = True
        except ConnectionClosed as closed:
            seen.closed_with = closed.rcvd.code if closed.rcvd else None
    return seen


def allowed_closes(sent: list[Frame]) -> set[int]:
    """How the call may close: the first message that closes it decides, except that
    a refused message right behind an ``end`` may beat the ``ended`` to the close."""
    closing = [frame.closes_with for frame in sent if frame.closes_with is not None]
    if not closing:
        return set()
    if closing[0] == 1000:
        return {1000} | {code for code in closing[1:2] if code in TRANSPORT_CLOSES}
    return {closing[0]}


def check_exchange(seen: Exchange, sent: list[Frame]) -> None:
    assert seen.events[0]["type"] == "ready", seen.events[0]
    for event in seen.events:
        kind = event.get("type")
        assert kind in EVENT_FIELDS, f"undocumented event {event}"
        assert set(event) == {"type"} | EVENT_FIELDS[kind], f"fields of {event}"
        if kind == "error":
            assert event["code"] in INPUT_ERRORS, event
            assert isinstance(event["message"], str) and event["message"], event
    closes = allowed_closes(sent)
    if not closes:
        assert seen.still_open, f"closed with {seen.closed_with} though nothing asked for it"
    else:
        assert seen.closed_with in closes, (seen.closed_with, seen.events[-3:])
    if seen.closed_with == 1000:
        assert seen.events[-1] == {"type": "ended", "reason": "hangup"}, seen.events[-3:]


class Neighbour:
    """A call connected beside the fuzzing for all of it, on an event loop of its own."""

    def __init__(self, url: str, token: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.received: list[dict[str, Any]] = []
        self.ws: ClientConnection = self._run(open_socket(url, token))
        self.listening: Future[None] = asyncio.run_coroutine_threadsafe(self._listen(), self.loop)

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT_S)

    async def _listen(self) -> None:
        async for message in self.ws:
            if isinstance(message, str):
                self.received.append(json.loads(message))

    def typed_turn(self, text: str) -> list[dict[str, Any]]:
        """Type a turn; every event received since connecting, up to its metrics."""
        self._run(send_json(self.ws, type="text", text=text))
        deadline = time.monotonic() + TIMEOUT_S
        while not any(event["type"] == "metrics" for event in self.received):
            assert time.monotonic() < deadline, f"no reply: {self.received}"
            assert not self.listening.done(), f"the socket closed: {self.received}"
            time.sleep(0.05)
        return list(self.received)

    def close(self) -> None:
        self._run(self.ws.close())
        self.listening.result(TIMEOUT_S)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT_S)
        self.loop.close()


@pytest.fixture
def neighbour(instant_stack: InstantStack, make_call: Callable[..., Call]) -> Iterator[Neighbour]:
    call = make_call()
    beside = Neighbour(instant_stack.server.ws_url(call.session_id), call.token)
    try:
        yield beside
    finally:
        beside.close()


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: every step of it is a live call, and a failing list of at
    # most MAX_FRAMES messages is readable as it is.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    # Each example is a real call over a socket; slow and large by design.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def test_any_input_gets_documented_answers_and_spares_the_call_beside(
    instant_stack: InstantStack, make_call: Callable[..., Call], neighbour: Neighbour
) -> None:
    server = instant_stack.server
    fuzzed: list[str] = []

    @FUZZ_SETTINGS
    @given(sent=st.lists(frames, min_size=1, max_size=MAX_FRAMES))
    def one_call(sent: list[Frame]) -> None:
        note(f"sent: {sent!r}")  # Hypothesis prints no repr of these itself
        call = make_call()
        fuzzed.append(call.session_id)
        check_exchange(
            asyncio.run(fuzz_call(server.ws_url(call.session_id), call.token, sent)), sent
        )

    one_call()

    assert server.process.poll() is None, server.log()
    received = neighbour.typed_turn("What time do you open?")
    assert received[0]["type"] == "ready"
    # Its own turn's events and nothing else: no error, nothing of a fuzzed call.
    assert {event.get("turn_id") for event in received[1:]} == {1}, received
    assert [e for e in received if e["type"] == "error"] == []
    done = next(event for event in received if event["type"] == "response.done")
    assert done == {"type": "response.done", "turn_id": 1, "text": REPLY, "interrupted": False}
    with override_settings(REDIS_URL=instant_stack.redis_url):
        wait_until_disconnected(fuzzed)
    with redis.Redis.from_url(instant_stack.redis_url) as client:
        claimed = [sid for sid in fuzzed if client.exists(presence_key(sid))]
    assert claimed == [], "closed sockets whose calls never stopped"
    # Left to the server, their grace timers would end them 30 s after each
    # call, under the flush of the test database: end them now, as the API does.
    for session in CallSession.objects.filter(pk__in=fuzzed):
        end_session(session, "fuzzed")
    # A failure can be answered politely and still be one: a traceback in the
    # server's log, or a worker's (a fuzzed typed turn superseded before its
    # answer reports nothing to the caller).
    for name, log in [("daphne", server.log())] + [
        (queue, instant_stack.workers.log(queue)) for queue in instant_stack.workers.by_queue
    ]:
        assert "Traceback" not in log, f"{name} logged a failure:\n{log}"
