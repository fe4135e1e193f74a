"""Callers that speak: real speech frames at real-time pace over protocol v1, each
turn timed hop by hop on the caller's clock.

A :class:`SpokenCaller` holds one call open for all its turns. Each turn it
announces its words to the instant STT (``workers.engines.instant.announce``),
streams the recorded question (``bench.speech``) as a microphone would, with
silence before and after, and keeps the microphone open until the reply's
``metrics`` arrived and the reply's audio would have finished playing; then
it speaks again. Every turn ends answered, fallback or lost, as the typed
callers' turns do (``bench.load``), and a lost turn says why.

The figure that matters is the **orchestration overhead**: end of speech →
first reply audio at the caller, less the endpointing and less the engine
time the workers report (``stt_ms``: the STT worker's time in its engine; the
instant LLM and TTS engines answer in microseconds and report nothing of
their own). The endpointing is what the server's endpointer needs of the
audio by design: ``VOICE_VAD_SILENCE_MS`` of silence after webrtcvad's own
hang-over. Each caller runs the same endpointer over exactly the audio it
sends (``bench.speech.caller_endpointer``), so the overhead starts at the
moment the caller had sent the frame that completes that silence. What is
left is what the platform adds: the socket, daphne's lag on the audio, the
queues, the workers, the channel layer and the consumer.

Two probes run beside the callers: a raw Redis round trip (``PING`` every
:data:`RTT_INTERVAL_S`, in a process of its own so that the callers' event
loop does not delay it) and the callers' own event-loop lag (how late a
10 ms sleep wakes up), which is part of every figure the callers take.
"""

import asyncio
import json
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import redis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.load import (
    FALLBACK_CODES,
    LOST_AFTER_S,
    PCM16_BYTES,
    PLAYBACK_MARGIN_S,
    Outcome,
    open_call,
)
from bench.speech import VAD_SILENCE_MS, Utterance, caller_endpointer, speak
from voiceproj.pipeline import FALLBACK_LINE
from workers.engines.instant import announce

# One raw Redis round trip this often: enough samples for a p99 in a minute
# without loading the server the callers share.
RTT_INTERVAL_S = 0.02
# The event-loop lag probe sleeps this long and notes how late it woke.
LAG_PROBE_S = 0.01
# Client-observed hops, in the order a spoken turn passes them: each is the
# time between two events the caller receives (see SpokenTurn.hops).
HOPS = ("endpointing", "endpointing_lag", "stt", "classify", "reply", "tts", "server_first_audio")
# What the workers report in the metrics event, beside the consumer's own.
WORKER_TIMINGS = ("stt_ms", "classify_ms", "first_token_ms")


@dataclass
class SpokenTurn:
    """One spoken turn as the caller lived it; times are monotonic, the caller's."""

    caller: int
    index: int  # 0-based, in the caller's order
    text: str  # what the caller said (announced to the instant STT)
    outcome: Outcome = Outcome.LOST
    turn_id: int | None = None
    speech_end: float | None = None  # the last voiced frame was sent
    vad_end: float | None = None  # the frame was sent that ends the utterance (caller_endpointer)
    stopped_at: float | None = None  # speech.stopped: the server ended the utterance
    transcript_at: float | None = None
    intent_at: float | None = None
    first_delta_at: float | None = None  # the first response.delta
    first_audio_at: float | None = None  # the first binary frame of the reply
    reply: str = ""
    timings: dict[str, int | None] = field(default_factory=dict)  # the metrics event
    errors: list[str] = field(default_factory=list)
    detail: str = ""  # why a turn was lost

    @property
    def first_audio_ms(self) -> float | None:
        """End of speech → first reply audio, endpointing and engines included."""
        if self.speech_end is None or self.first_audio_at is None:
            return None
        return (self.first_audio_at - self.speech_end) * 1000

    @property
    def engine_ms(self) -> float:
        """Engine time on the way to the first audio, as the workers report it."""
        return float(self.timings.get("stt_ms") or 0)

    @property
    def endpointing_ms(self) -> float | None:
        """End of speech → the endpointer had its silence: endpointing by design."""
        if self.speech_end is None or self.vad_end is None:
            return None
        return (self.vad_end - self.speech_end) * 1000

    @property
    def overhead_ms(self) -> float | None:
        """What the platform adds: first audio less endpointing and engine time."""
        if self.first_audio_ms is None or self.endpointing_ms is None:
            return None
        if self.outcome is Outcome.LOST:
            return None
        return self.first_audio_ms - self.endpointing_ms - self.engine_ms

    def hops(self) -> dict[str, float | None]:
        """Each hop in ms, ``None`` where one of its ends was not seen.

        * ``endpointing``: end of speech → the endpointer had its silence,
          less that silence: webrtcvad's own hang-over (by design, not overhead);
        * ``endpointing_lag``: that moment → ``speech.stopped``: the socket
          and daphne's lag on the audio (overhead);
        * ``stt``: ``speech.stopped`` → ``transcript`` (stt queue and worker);
        * ``classify``: ``transcript`` → ``intent`` (respond queue, the
          responder's round trip through the classify queue);
        * ``reply``: ``intent`` → the first ``response.delta``;
        * ``tts``: the first delta → the first audio (tts queue and worker,
          the audio's way back through the channel layer);
        * ``server_first_audio``: the server's own ``first_audio_ms`` (its end
          of the utterance → the first audio handed to the socket).
        """

        def between(start: float | None, end: float | None, less: float = 0.0) -> float | None:
            return None if start is None or end is None else (end - start) * 1000 - less

        server = self.timings.get("first_audio_ms")
        return {
            "endpointing": between(self.speech_end, self.vad_end, VAD_SILENCE_MS),
            "endpointing_lag": between(self.vad_end, self.stopped_at),
            "stt": between(self.stopped_at, self.transcript_at),
            "classify": between(self.transcript_at, self.intent_at),
            "reply": between(self.intent_at, self.first_delta_at),
            "tts": between(self.first_delta_at, self.first_audio_at),
            "server_first_audio": None if server is None else float(server),
        }


class TurnOver(Exception):
    """The call cannot go on: it ended, or the socket closed."""


class SpokenCaller:
    """One caller on one call: ``utterance`` spoken once per turn, turns one after another."""

    def __init__(
        self,
        number: int,
        ws_url: str,
        token: str,
        utterance: Utterance,
        announcer: redis.Redis,
        session_id: str,
    ) -> None:
        self.number = number
        self.ws_url = ws_url
        self.token = token
        self.utterance = utterance
        self.announcer = announcer
        self.session_id = session_id
        self.results: list[SpokenTurn] = []
        # One per call, as the server's: it carries over between turns.
        self.endpointer = caller_endpointer()
        self._turn: SpokenTurn | None = None
        self._last_turn_id = 0  # the greeting is turn 0; the agents here have none
        self._audio_turn: int | None = None  # the turn whose audio.start came last
        self._sample_rate = 0
        self._playing_until = 0.0
        self._metrics = asyncio.Event()
        self._closed: str = ""  # why the call is over, once it is

    async def run(self, turns: int) -> list[SpokenTurn]:
        """Say the question ``turns`` times on one call, then hang up. Every turn
        is in the result: one the call did not live to take is lost, and says why."""
        self.results = [
            SpokenTurn(self.number, i, f"Caller {self.number}, turn {i + 1}: {self.utterance.text}")
            for i in range(turns)
        ]
        try:
            ws = await open_call(self.ws_url, self.token)
        except (OSError, TimeoutError, InvalidStatus, ConnectionClosed) as exc:
            self._closed = f"could not connect: {exc!r}"
        else:
            await self._converse(ws)
        for turn in self.results:
            if turn.outcome is Outcome.LOST and not turn.detail:
                turn.detail = self._closed or "not taken"
        return self.results

    async def _converse(self, ws: ClientConnection) -> None:
        reader = asyncio.create_task(self._read(ws))
        try:
            for turn in self.results:
                if self._closed:
                    break
                await self._speak_turn(ws, turn)
            await ws.send(json.dumps({"type": "end"}))
        except ConnectionClosed as exc:
            self._closed = self._closed or f"socket closed: {exc!r}"
        finally:
            reader.cancel()
            await ws.close()

    async def _speak_turn(self, ws: ClientConnection, turn: SpokenTurn) -> None:
        """Announce, speak, wait for the reply's metrics and hear its audio out."""
        await asyncio.to_thread(announce, self.announcer, self.session_id, turn.text)
        self._turn, self._metrics = turn, asyncio.Event()
        done = asyncio.Event()
        speaker = asyncio.create_task(
            speak(
                ws.send,
                self.utterance.v1_frames(),
                bytes(self.utterance.v1_frame_bytes),
                turn,
                done,
                self.utterance.v1_frame_ms,
                self.endpointer,
            )
        )
        try:
            async with asyncio.timeout(LOST_AFTER_S + self.utterance.seconds):
                await self._metrics.wait()
            # Silence goes on while the reply plays, as an open microphone's would.
            await asyncio.sleep(
                max(0.0, self._playing_until + PLAYBACK_MARGIN_S - time.monotonic())
            )
        except TimeoutError:
            turn.detail = f"no metrics within {LOST_AFTER_S:.0f} s of the end of speech"
        finally:
            done.set()
            await speaker
            self._turn = None
            self._last_turn_id = max(self._last_turn_id, turn.turn_id or 0)

    async def _read(self, ws: ClientConnection) -> None:
        """Everything the server sends, noted on the turn it belongs to."""
        try:
            async for message in ws:
                self._receive(message, time.monotonic())
        except ConnectionClosed as exc:
            self._closed = f"socket closed: {exc!r}"
        self._closed = self._closed or "the server closed the socket"
        self._metrics.set()  # nothing more comes for the turn waiting

    def _receive(self, message: str | bytes, now: float) -> None:
        turn = self._turn
        if isinstance(message, bytes):
            if self._sample_rate:
                seconds = len(message) / (PCM16_BYTES * self._sample_rate)
                self._playing_until = max(self._playing_until, now) + seconds
            if turn and turn.turn_id is not None and self._audio_turn == turn.turn_id:
                turn.first_audio_at = turn.first_audio_at or now
            return
        data = json.loads(message)
        kind, turn_id = data["type"], data.get("turn_id")
        if kind == "ended":
            self._closed = f"call ended: {data.get('reason')}"
            return
        if kind == "audio.start":
            self._sample_rate, self._audio_turn = int(data["sample_rate"]), turn_id
        if turn is None or (turn_id is not None and turn_id <= self._last_turn_id):
            return  # between turns, or a late event of an earlier turn
        if kind == "speech.started" and turn.turn_id is None:
            turn.turn_id = turn_id
        elif turn_id != turn.turn_id and kind != "error":
            return
        if kind == "error":
            turn.errors.append(data["code"])
        elif kind == "speech.stopped":
            turn.stopped_at = now
        elif kind == "transcript" and data["final"]:
            turn.transcript_at = now
        elif kind == "intent":
            turn.intent_at = now
        elif kind == "response.delta":
            turn.first_delta_at = turn.first_delta_at or now
        elif kind == "response.done":
            turn.reply = data["text"]
        elif kind == "metrics":
            turn.timings = {k: v for k, v in data.items() if k.endswith("_ms")}
            self._settle(turn)
            self._metrics.set()

    @staticmethod
    def _settle(turn: SpokenTurn) -> None:
        """The turn's outcome once its metrics arrived."""
        if not turn.reply:
            turn.detail = "no reply: the utterance gave no transcript"
        elif FALLBACK_CODES.intersection(turn.errors) or turn.reply.endswith(FALLBACK_LINE):
            turn.outcome = Outcome.FALLBACK
        elif turn.first_audio_at is None:
            turn.detail = "a reply without audio"
        else:
            turn.outcome = Outcome.ANSWERED


def _ping_until_told(url: str, interval_s: float, pipe: Connection) -> None:
    """In a process of its own: PING every ``interval_s`` until ``pipe`` says
    stop; send back every round trip in ms."""
    client = redis.Redis.from_url(url)
    samples: list[float] = []
    while not pipe.poll(interval_s):
        started = time.perf_counter()
        client.ping()
        samples.append((time.perf_counter() - started) * 1000)
    pipe.send(samples)


async def with_probes(
    redis_url: str, work: Callable[[], Awaitable[Any]]
) -> tuple[Any, list[float], list[float]]:
    """Run ``work`` with both probes beside it: its result, the Redis round
    trips and the event-loop lags seen meanwhile, in ms."""
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    pinger = multiprocessing.get_context("spawn").Process(
        target=_ping_until_told, args=(redis_url, RTT_INTERVAL_S, theirs), daemon=True
    )
    pinger.start()
    lags: list[float] = []
    stop = asyncio.Event()

    async def probe_lag() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            asked = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            lags.append((loop.time() - asked - LAG_PROBE_S) * 1000)

    prober = asyncio.create_task(probe_lag())
    try:
        result = await work()
    finally:
        stop.set()
        await prober
        ours.send("stop")
        rtts: list[float] = await asyncio.to_thread(ours.recv)
        pinger.join()
    return result, rtts, lags
