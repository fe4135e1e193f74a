"""Simulated callers for load tests: set up through the REST API, talk over real
WebSockets (wire protocol v1) and account for every turn they take.

Each turn ends one of three ways (:class:`Outcome`):

* ``answered``: the agent's own reply arrived (``response.done`` then ``metrics``);
* ``fallback``: the turn failed and the caller got the fallback line instead
  (``error`` ``turn_failed`` / ``service_unavailable`` / ``pipeline_error``, or
  a ``response.done`` that ends with :data:`~voiceproj.pipeline.FALLBACK_LINE`);
* ``lost``: no ``response.done`` and ``metrics`` within :data:`LOST_AFTER_S`,
  or the call dropped or ended under the caller. A lost turn is a bug.

Used by ``bench/soak.py``, ``bench/spoken.py`` and the concurrency test;
nothing here imports Django. Run as ``python -m bench.load``, it is the
spoken-caller capacity benchmark (``bench/capacity.py``, docs/benchmarks.md).
"""

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from statistics import quantiles
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voiceproj.pipeline import FALLBACK_LINE

# The caller gives up on a turn after this long. Generous: the watchdog answers
# a failed turn within VOICE_TURN_QUEUE_S (15 s), so anything past it is lost.
LOST_AFTER_S = 60.0
HTTP_TIMEOUT_S = 30.0
# Error codes that mean the turn failed and the fallback line answers it.
FALLBACK_CODES = frozenset({"turn_failed", "service_unavailable", "pipeline_error"})
# Margin after the reply's audio would have finished playing before the caller
# speaks again: sooner would barge in on the agent (docs/protocol.md).
PLAYBACK_MARGIN_S = 0.3
PCM16_BYTES = 2
PASSWORD = "soak-caller-pass-9731"
# Questions for the instant classifier: none says a farewell word (bye,
# goodbye, farewell), which would end the call.
QUESTIONS = (
    "What time do you open tomorrow?",
    "Can I book a table for two tonight?",
    "How much is the premium plan?",
    "Do you deliver to the city centre?",
    "Is there parking near the office?",
)


class Outcome(StrEnum):
    ANSWERED = "answered"
    FALLBACK = "fallback"
    LOST = "lost"


@dataclass
class TurnResult:
    """One typed turn as the caller lived it."""

    caller: int
    index: int  # 0-based, in the caller's order
    text: str
    outcome: Outcome
    latency_ms: float | None = None  # text sent → response.done
    turn_id: int | None = None
    reply: str = ""
    errors: list[str] = field(default_factory=list)  # error codes received
    detail: str = ""  # why a turn was lost


@dataclass
class Account:
    """A user with one agent and its call sessions, created through the REST API."""

    base_url: str
    token: str
    agent_id: int
    sessions: list[dict[str, Any]]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def turns(self, session_id: str) -> list[dict[str, Any]]:
        """The saved turns of a session (``GET /api/sessions/{id}/turns``)."""
        response = httpx.get(
            f"{self.base_url}/api/sessions/{session_id}/turns",
            headers=self.headers,
            timeout=HTTP_TIMEOUT_S,
        )
        response.raise_for_status()
        return list(response.json())


def _checked(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text}"
        )
    return dict(response.json())


def provision(base_url: str, sessions: int) -> Account:
    """Register a user, log in, create an agent without a greeting and ``sessions``
    call sessions. Two calls to ``/api/auth/*``, well inside its rate limit."""
    name = f"load-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=f"{base_url}/api", timeout=HTTP_TIMEOUT_S) as api:
        user = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        _checked(api.post("/auth/register", json=user), 201)
        login = {"username": name, "password": PASSWORD}
        token = _checked(api.post("/auth/login", json=login), 200)["access"]
        api.headers["Authorization"] = f"Bearer {token}"
        # No greeting: every saved agent turn is then an answer to a typed turn.
        agent = _checked(api.post("/agents", json={"name": "Load agent", "greeting": ""}), 201)
        created = [
            _checked(api.post(f"/agents/{agent['id']}/sessions"), 201) for _ in range(sessions)
        ]
    return Account(base_url, token, int(agent["id"]), created)


async def open_call(ws_url: str, token: str) -> ClientConnection:
    """Connect to a call socket with the Bearer ``token`` and wait for ``ready``."""
    ws = await connect(
        ws_url,
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=None,
        open_timeout=HTTP_TIMEOUT_S,
    )
    try:
        async with asyncio.timeout(HTTP_TIMEOUT_S):
            while True:
                message = await ws.recv()
                if isinstance(message, str) and json.loads(message)["type"] == "ready":
                    return ws
    except BaseException:
        await ws.close()
        raise


class CallEnded(Exception):
    """The server ended the call (``ended``) while the caller waited for a reply."""


class Caller:
    """One caller on one session: typed turns, one after another.

    With ``listen`` the caller hears each reply's audio out before it speaks
    again (sooner would barge in on the agent); without, it sends the next
    turn as soon as the reply's ``metrics`` arrived, cutting off the playback.
    Then it waits ``think_s``.
    """

    def __init__(
        self, number: int, ws_url: str, token: str, listen: bool = True, think_s: float = 0.0
    ) -> None:
        self.number = number
        self.ws_url = ws_url
        self.token = token
        self.listen = listen
        self.think_s = think_s
        self.results: list[TurnResult] = []
        self.over = False  # the call cannot go on: it ended, or no connection
        self._last_turn_id = -1
        self._ws: ClientConnection | None = None

    async def run(self, texts: Iterable[str], until: float | None = None) -> list[TurnResult]:
        """Say each of ``texts`` in turn; stop early at monotonic time ``until``."""
        try:
            for index, text in enumerate(texts):
                if self.over or (until is not None and time.monotonic() >= until):
                    break
                self.results.append(await self._turn(index, text))
                await asyncio.sleep(self.think_s)
        finally:
            if self._ws is not None:
                await self._ws.close()
        return self.results

    async def _socket(self) -> ClientConnection:
        """The open socket, (re)connecting and waiting for ``ready`` when needed."""
        if self._ws is None:
            self._ws = await open_call(self.ws_url, self.token)
        return self._ws

    async def _turn(self, index: int, text: str) -> TurnResult:
        result = TurnResult(self.number, index, text, Outcome.LOST)
        try:
            ws = await self._socket()
        except (OSError, TimeoutError, InvalidStatus, ConnectionClosed) as exc:
            self._ws, self.over = None, True
            result.detail = f"could not connect: {exc!r}"
            return result
        sent = time.monotonic()
        try:
            await ws.send(json.dumps({"type": "text", "text": text}))
            async with asyncio.timeout(LOST_AFTER_S):
                playing_until = await self._receive_reply(ws, result, sent)
        except TimeoutError:
            awaited = "metrics" if result.latency_ms is not None else "response.done"
            result.detail = f"no {awaited} within {LOST_AFTER_S:.0f} s"
            # Whatever of this turn still comes is stale for the next one.
            self._last_turn_id = max(self._last_turn_id, result.turn_id or -1)
            return result
        except CallEnded as exc:
            self.over = True
            result.detail = f"call ended: {exc}"
            return result
        except ConnectionClosed as exc:
            self._ws = None  # the next turn reconnects to the session
            result.detail = f"socket closed: {exc!r}"
            return result
        if self.listen:
            await asyncio.sleep(max(0.0, playing_until + PLAYBACK_MARGIN_S - time.monotonic()))
        return result

    async def _receive_reply(self, ws: ClientConnection, result: TurnResult, sent: float) -> float:
        """Read this turn's events up to its ``metrics`` and fill ``result``; the
        monotonic time its audio ends playing (as a real player would time it)."""
        playing_until = 0.0
        sample_rate = 0
        while True:
            message = await ws.recv()
            now = time.monotonic()
            if isinstance(message, bytes):
                if sample_rate:
                    seconds = len(message) / (PCM16_BYTES * sample_rate)
                    playing_until = max(playing_until, now) + seconds
                continue
            data = json.loads(message)
            kind, turn_id = data["type"], data.get("turn_id")
            if turn_id is not None and turn_id <= self._last_turn_id:
                continue  # a late event of an earlier turn
            if kind == "interrupted" or data.get("interrupted"):
                # This turn cut off an earlier one (e.g. after a lost turn): that
                # turn's events are not this turn's answer.
                self._last_turn_id = max(self._last_turn_id, int(turn_id))
            elif kind == "error":
                result.errors.append(data["code"])
            elif kind == "ended":
                raise CallEnded(data.get("reason"))
            elif kind == "audio.start":
                sample_rate = int(data["sample_rate"])
            elif kind == "response.done":
                result.turn_id = turn_id
                result.reply = data["text"]
                result.latency_ms = (now - sent) * 1000
            elif kind == "metrics" and result.latency_ms is not None:
                self._last_turn_id = int(turn_id)
                failed = FALLBACK_CODES.intersection(result.errors)
                fell_back = failed or result.reply.endswith(FALLBACK_LINE)
                result.outcome = Outcome.FALLBACK if fell_back else Outcome.ANSWERED
                return playing_until


def questions(caller: int) -> Iterator[str]:
    """An endless, distinct text per turn for caller ``caller``."""
    turn = 0
    while True:
        yield f"Caller {caller}, turn {turn + 1}: {QUESTIONS[(caller + turn) % len(QUESTIONS)]}"
        turn += 1


async def run_callers(
    account: Account,
    turns: int | None = None,
    until: float | None = None,
    listen: bool = True,
    think_s: float = 0.0,
) -> list[TurnResult]:
    """One :class:`Caller` per session of ``account``, all at once: ``turns`` turns
    each, or as many as fit before monotonic time ``until``."""

    callers = [
        Caller(number, session["ws_url"], account.token, listen, think_s)
        for number, session in enumerate(account.sessions)
    ]
    runs = [caller.run(islice(questions(caller.number), turns), until) for caller in callers]
    return [result for results in await asyncio.gather(*runs) for result in results]


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 of ``values`` (``None`` when there are none)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    cuts = quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "p99": round(cuts[98], 1)}


def tally(results: list[TurnResult]) -> dict[str, Any]:
    """Turns by outcome, and percentiles of text sent → ``response.done`` over every
    turn that got one (fallback turns included: that is what their caller waited)."""
    counts = {outcome.value: 0 for outcome in Outcome}
    for result in results:
        counts[result.outcome.value] += 1
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    return {"turns": len(results), **counts, "latency_ms": percentiles(latencies)}


def lost_by_caller(results: list[TurnResult]) -> dict[int, list[str]]:
    """Lost turns by caller, each as ``"turn N: why"``: for reports, never dropped."""
    lost: dict[int, list[str]] = {}
    for result in results:
        if result.outcome is Outcome.LOST:
            lost.setdefault(result.caller, []).append(f"turn {result.index + 1}: {result.detail}")
    return lost


if __name__ == "__main__":
    # The command design.md names; its code lives in bench/capacity.py, which
    # imports this module (as ``bench.load``) for the callers' accounting.
    from bench.capacity import main

    sys.exit(main())
