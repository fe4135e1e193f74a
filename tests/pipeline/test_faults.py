"""Faults survived (docs/reliability.md): real daphne, one real prefork Celery
worker per queue with the local engines, a private Redis this module may kill,
and PostgreSQL behind a proxy it may cut. For each fault: what the caller
receives and within how long, that the next turn works, that saved turns are
intact, that no audio is duplicated and that the session still ends properly.
"""

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
from django.conf import settings
from django.db import connection

from calls.models import CallSession, Turn
from calls.presence import presence_key
from tests.fakes.ollama import ollama_server
from tests.fakes.server import FakeServer
from voiceproj.pipeline import FALLBACK_LINE
from workers.audio import rms

from . import conftest as live
from .conftest import LiveServer, Workers, start_workers, subprocess_env
from .faultkit import RestartableRedis, TcpProxy
from .test_e2e import question_16k  # noqa: F401  (fixture)
from .wire import close_code, open_socket, send_json, stream_realtime

pytestmark = pytest.mark.e2e

AUDIO = "<audio>"
# Local engines on 2 shared cores: a healthy turn takes seconds.
TURN_TIMEOUT_S = 90.0
# The documented bound for a worker's death to reach the caller is
# VOICE_TURN_STALL_S; a killed pool process is reported by its parent at once.
FAILURE_BOUND_S = settings.VOICE_TURN_STALL_S + 2
# An engine request's bound in the hung-engine test (ENGINE_TIMEOUT_S, 30 s by default).
HUNG_ENGINE_TIMEOUT_S = 3.0
RECEIVED = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] received")


@dataclass
class FaultStack:
    server: LiveServer
    workers: Workers
    redis: RestartableRedis
    database: TcpProxy


@pytest.fixture(scope="module")
def fault_stack(live_server_factory, live_log_dir) -> Iterator[FaultStack]:
    private_redis = RestartableRedis(live_log_dir)
    database = TcpProxy(int(connection.settings_dict.get("PORT") or 5432))
    db_url = live.test_database_url().rsplit("/", 1)[0].rsplit(":", 1)[0]
    env = {
        "REDIS_URL": private_redis.url,
        "CELERY_BROKER_URL": private_redis.url,
        "DATABASE_URL": f"{db_url}:{database.port}/{connection.settings_dict['NAME']}",
        "VOICE_DISCONNECT_GRACE_S": "2",
        # The kills below land in a turn's STT task while it decodes; with early
        # transcripts that task would only pick up the pause's words (the early
        # task's own death is test_an_stt_process_killed_while_the_caller_pauses...).
        "VOICE_STT_EARLY_MS": "0",
        # Likewise the kill in the classify task: the embedding classifier is
        # done in 6 ms, before the kill can land; SmolLM2 takes 60-200 ms.
        "CLASSIFIER_LOCAL": "llm",
    }
    server = live_server_factory(**env)
    workers = start_workers(live_log_dir, subprocess_env(**env), tag="-faults")
    yield FaultStack(server, workers, private_redis, database)
    workers.stop()
    private_redis.kill()
    database.close()


# The stacks' grace period (2 s) and the session's final writes, with room.
SESSIONS_END_S = 10.0


@pytest.fixture(autouse=True)
def settled(request, transactional_db: None) -> Iterator[None]:
    """After each test, wait until the private stack let go of every call and
    ended it (VOICE_DISCONNECT_GRACE_S after the socket closed), so the test
    database is not flushed under its last writes: a TRUNCATE beside the
    session's final UPDATE can deadlock, and PostgreSQL then kills the flush.
    It asks for ``transactional_db`` so that its teardown runs before the flush."""
    yield
    if "fault_stack" in request.fixturenames:
        wait_released(request.getfixturevalue("fault_stack").redis.url)
    if "stalling_llm_stack" in request.fixturenames:
        wait_released(request.getfixturevalue("stalling_llm_stack")[2].url)
    deadline = time.monotonic() + SESSIONS_END_S
    while CallSession.objects.filter(status=CallSession.Status.ACTIVE).exists():
        if time.monotonic() > deadline:
            break  # a test that leaves a call open on purpose; nothing writes to it
        time.sleep(0.1)


@dataclass
class Heard:
    """What the caller received: events with their arrival time, and audio per turn."""

    events: list[tuple[float, dict]] = field(default_factory=list)
    audio: dict[int, bytearray] = field(default_factory=dict)
    audio_turn: int | None = None

    def of(self, kind: str) -> list[dict]:
        return [e for _, e in self.events if e["type"] == kind]

    def time_of(self, kind: str, **match: object) -> float:
        return next(
            t
            for t, e in self.events
            if e["type"] == kind and all(e.get(k) == v for k, v in match.items())
        )


async def hear_until(ws, heard: Heard, kind: str, timeout: float = TURN_TIMEOUT_S) -> dict:
    """Record everything up to the next event of ``kind``; that event."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.recv()
            if isinstance(message, bytes):
                assert heard.audio_turn is not None, "audio outside audio.start/audio.end"
                heard.audio.setdefault(heard.audio_turn, bytearray()).extend(message)
                continue
            data = json.loads(message)
            heard.events.append((time.monotonic(), data))
            if data["type"] == "audio.start":
                heard.audio_turn = data["turn_id"]
            elif data["type"] == "audio.end":
                heard.audio_turn = None
            if data["type"] == kind:
                return data


async def answered(ws, heard: Heard, text: str) -> dict:
    """Send a typed turn; its response.done after the metrics closed it."""
    await send_json(ws, type="text", text=text)
    await hear_until(ws, heard, "metrics")
    return heard.of("response.done")[-1]


def saved_turns(call) -> list[tuple[int, str, str, bool]]:
    rows = Turn.objects.filter(session_id=call.session_id).order_by("index")
    return list(rows.values_list("turn_id", "speaker", "text", "interrupted"))


def wait_until_running(stack: FaultStack, queue: str, seen: int, timeout: float = 30) -> None:
    """Wait for the next task the ``queue`` worker received to start running:
    its id is claimed in Redis as the task's first step (workers.turntask)."""
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(stack.redis.url)
    try:
        while True:
            log = stack.workers.log(queue)
            received = RECEIVED.findall(log)[seen:]
            if received and client.exists(f"voice:task:{received[0]}"):
                assert f"[{received[0]}] succeeded" not in log, "the task ended before the kill"
                return
            assert time.monotonic() < deadline, f"no task started on the {queue} worker"
            time.sleep(0.005)
    finally:
        client.close()


def wait_released(redis_url: str, session_id: str = "*", timeout: float = 15) -> None:
    """Wait until the server let go of the call's socket (every call's, by
    default): its last writes are done."""
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while client.keys(presence_key(session_id)):
            assert time.monotonic() < deadline, "the server still holds a call"
            time.sleep(0.05)
    finally:
        client.close()


def assert_failed_over(heard: Heard, turn_id: int, since: float) -> None:
    """turn_failed in time, then the fallback line spoken once under the turn's id."""
    errors = [e for e in heard.of("error") if e["code"] == "turn_failed"]
    assert len(errors) == 1, [(e["type"], e.get("turn_id"), e.get("code")) for _, e in heard.events]
    took = heard.time_of("error", code="turn_failed") - since
    print(f"turn_failed {took:.2f} s after the fault")
    assert took < FAILURE_BOUND_S
    (done,) = [e for e in heard.of("response.done") if e["turn_id"] == turn_id]
    assert done["text"].endswith(FALLBACK_LINE) and done["interrupted"] is False
    starts = [e for e in heard.of("audio.start") if e["turn_id"] == turn_id]
    ends = [e for e in heard.of("audio.end") if e["turn_id"] == turn_id]
    assert len(starts) == len(ends) == 1, "the turn's audio was started or ended twice"
    assert rms(bytes(heard.audio[turn_id])) > 0.01, "the fallback line was not spoken"
    assert [e for e in heard.of("metrics") if e["turn_id"] == turn_id]


@pytest.mark.parametrize("queue", ["stt", "classify", "respond", "tts"])
def test_a_pool_process_killed_mid_turn_costs_only_that_turn(
    fault_stack: FaultStack,
    make_call,
    question_16k: bytes,  # noqa: F811
    queue: str,
) -> None:
    stack, call = fault_stack, make_call()
    heard = Heard()

    async def scenario() -> tuple[float, int]:
        async with await open_socket(stack.server.ws_url(call.session_id), call.token) as ws:
            await hear_until(ws, heard, "ready")
            first = await answered(ws, heard, "Hello, who am I talking to?")
            assert not first["text"].endswith(FALLBACK_LINE)
            saved_before = await asyncio.to_thread(saved_turns, call)
            seen = len(RECEIVED.findall(stack.workers.log(queue)))

            def kill_mid_task() -> float:
                wait_until_running(stack, queue, seen)
                stack.workers.by_queue[queue].kill_pool()  # as the OOM killer would
                return time.monotonic()

            killing = asyncio.create_task(asyncio.to_thread(kill_mid_task))
            if queue == "stt":
                silence = b"\0" * 32000
                await stream_realtime(ws, silence[:8000] + question_16k + silence, 16000)
            else:
                await send_json(ws, type="text", text="What is the weather like on the coast?")
            killed_at = await killing
            await hear_until(ws, heard, "metrics")
            failed_turn = heard.of("metrics")[-1]["turn_id"]
            assert await asyncio.to_thread(saved_turns, call) >= saved_before
            # The next turn is answered by the worker's new pool process.
            after = await answered(ws, heard, "Thanks. And what about tomorrow?")
            assert not after["text"].endswith(FALLBACK_LINE), after
            assert heard.of("intent")
            await send_json(ws, type="end")
            await hear_until(ws, heard, "ended")
            assert await close_code(ws) == 1000
            return killed_at, failed_turn

    killed_at, failed_turn = asyncio.run(scenario())
    assert_failed_over(heard, failed_turn, killed_at)
    assert heard.of("ended")[-1]["reason"] == "hangup"
    rows = saved_turns(call)
    failed_agent = [r for r in rows if r[0] == failed_turn and r[1] == "agent"]
    assert failed_agent and failed_agent[0][2].endswith(FALLBACK_LINE)
    assert CallSession.objects.get(pk=call.session_id).status == "ended"


def test_an_stt_process_killed_while_the_caller_pauses_costs_no_turn(
    daphne_server: LiveServer,
    celery_workers: Workers,
    make_call,
    question_16k: bytes,  # noqa: F811
) -> None:
    """The early transcript's pool process dies mid-decode: the utterance's own
    task decodes the audio instead, and the caller is answered as usual."""
    call, heard = make_call(), Heard()
    client = redis.Redis.from_url(settings.REDIS_URL)

    def kill_during_early_decode() -> None:
        deadline = time.monotonic() + TURN_TIMEOUT_S
        # early_claim_key: set by the early task as its first step.
        while not client.keys(f"voice:early:{call.session_id}:*:claim"):
            assert time.monotonic() < deadline, "no early transcript was started"
            time.sleep(0.005)
        celery_workers.by_queue["stt"].kill_pool()

    async def scenario() -> None:
        async with await open_socket(daphne_server.ws_url(call.session_id), call.token) as ws:
            await hear_until(ws, heard, "ready")
            killing = asyncio.create_task(asyncio.to_thread(kill_during_early_decode))
            silence = b"\0" * 32000
            await stream_realtime(ws, silence[:8000] + question_16k + silence, 16000)
            await killing
            await hear_until(ws, heard, "metrics")
            await send_json(ws, type="end")
            await hear_until(ws, heard, "ended")

    try:
        asyncio.run(scenario())
    finally:
        client.close()
    (transcript,) = heard.of("transcript")
    assert "capital" in transcript["text"].lower() and transcript["early"] is False
    assert not heard.of("error")
    assert not heard.of("response.done")[-1]["text"].endswith(FALLBACK_LINE)


def test_redis_restarted_mid_call_keeps_the_call_and_its_turns(
    fault_stack: FaultStack, make_call
) -> None:
    stack, call = fault_stack, make_call(greeting="Welcome to the test line.")
    heard = Heard()

    async def scenario() -> float:
        async with await open_socket(stack.server.ws_url(call.session_id), call.token) as ws:
            await hear_until(ws, heard, "metrics")  # the greeting
            await answered(ws, heard, "Hello, who am I talking to?")
            await send_json(ws, type="text", text="Tell me a long story about the sea.")
            # The intent comes from the running respond task after its first
            # heartbeat, so the call knows a worker runs the turn: the outage
            # is a stalled turn (VOICE_TURN_STALL_S), not a queued one.
            await hear_until(ws, heard, "intent")
            stack.redis.kill()  # while the reply is being spoken
            stopped_at = time.monotonic()
            await asyncio.sleep(4)
            stack.redis.start()
            # The turn in flight is lost with Redis; the caller is told and answered.
            await hear_until(ws, heard, "metrics")
            await send_json(ws, type="ping")
            await hear_until(ws, heard, "pong", timeout=5)
            after = await answered(ws, heard, "Are you still there?")
            assert not after["text"].endswith(FALLBACK_LINE), after
            # Hang up once the reply has played, so it is saved as delivered.
            await asyncio.sleep(len(heard.audio.get(after["turn_id"], b"")) / 2 / 22050 + 0.5)
            return stopped_at

    stopped_at = asyncio.run(scenario())
    wait_released(stack.redis.url, call.session_id)
    codes = {e["code"] for e in heard.of("error")}
    assert codes & {"turn_failed", "service_unavailable"}, [e["type"] for _, e in heard.events]
    assert heard.of("response.done")[2]["text"].endswith(FALLBACK_LINE)
    took = next(t for t, e in heard.events if e["type"] == "error") - stopped_at
    print(f"the caller heard of the outage {took:.2f} s after Redis stopped")
    assert took < FAILURE_BOUND_S + 4

    # Redis loses everything again while nobody is connected: a reconnect is
    # not greeted twice and its turns do not overwrite the saved ones.
    saved = saved_turns(call)
    stack.redis.kill()
    stack.redis.start()
    again = Heard()

    async def reconnect() -> None:
        async with await open_socket(stack.server.ws_url(call.session_id), call.token) as ws:
            await hear_until(ws, again, "ready")
            await answered(ws, again, "One more question: what time is it?")

    asyncio.run(reconnect())
    assert not again.of("audio.start") or again.of("audio.start")[0]["turn_id"] != 0
    assert all(e["turn_id"] > max(r[0] for r in saved) for e in again.of("response.done"))
    assert saved_turns(call)[: len(saved)] == saved


def test_database_cut_off_for_seconds_is_reported_and_the_call_recovers(
    fault_stack: FaultStack, make_call
) -> None:
    stack, call = fault_stack, make_call()
    heard = Heard()

    async def scenario() -> None:
        async with await open_socket(stack.server.ws_url(call.session_id), call.token) as ws:
            await hear_until(ws, heard, "ready")
            await answered(ws, heard, "Hello, who am I talking to?")
            stack.database.cut()
            try:
                await send_json(ws, type="text", text="Can you hear me now?")
                error = await hear_until(ws, heard, "error", timeout=15)
                # The dialog worker cannot save the caller's words: the turn fails over.
                assert error["code"] == "turn_failed", error
                await hear_until(ws, heard, "response.done", timeout=15)
                await send_json(ws, type="ping")
                await hear_until(ws, heard, "pong", timeout=5)
                await asyncio.sleep(3)
            finally:
                stack.database.restore()
            after = await answered(ws, heard, "Are you back?")
            assert not after["text"].endswith(FALLBACK_LINE), after

    asyncio.run(scenario())
    assert heard.of("response.done")[1]["text"] == FALLBACK_LINE
    rows = saved_turns(call)
    assert rows[0][:2] == (1, "user") and rows[0][2] == "Hello, who am I talking to?"
    assert rows[-2][2] == "Are you back?"


def test_a_caller_vanishing_mid_answer_keeps_what_was_heard_and_ends_the_session(
    fault_stack: FaultStack, make_call
) -> None:
    stack, call = fault_stack, make_call()
    heard = Heard()

    async def scenario() -> None:
        ws = await open_socket(stack.server.ws_url(call.session_id), call.token)
        await hear_until(ws, heard, "ready")
        await send_json(ws, type="text", text="Tell me a long story about the sea.")
        # The whole story went out (TTS is faster than real time) and the
        # caller's speaker is still playing it when the network goes: no close frame.
        await hear_until(ws, heard, "response.done")
        ws.transport.abort()

    asyncio.run(scenario())
    deadline = time.monotonic() + 30
    session = CallSession.objects.get(pk=call.session_id)
    while session.status == "active" and time.monotonic() < deadline:
        time.sleep(0.2)
        session.refresh_from_db()
    assert (session.status, session.end_reason) == ("ended", "disconnected")
    agent = Turn.objects.get(session_id=call.session_id, speaker="agent")
    # Saved as delivered and marked interrupted: the caller did not hear it all.
    assert (agent.text, agent.interrupted) == (heard.of("response.done")[0]["text"], True)
    assert agent.text


@pytest.fixture(scope="module")
def stalling_llm_stack(
    live_server_factory, live_log_dir
) -> Iterator[tuple[LiveServer, FakeServer, RestartableRedis]]:
    """daphne and workers whose LLM is an Ollama server that can stall."""
    fake = ollama_server()
    private_redis = RestartableRedis(live_log_dir)
    env = {
        "REDIS_URL": private_redis.url,
        "CELERY_BROKER_URL": private_redis.url,
        "VOICE_LLM": "ollama",
        "OLLAMA_HOST": fake.url,
        "ENGINE_TIMEOUT_S": str(HUNG_ENGINE_TIMEOUT_S),
    }
    server = live_server_factory(**env)
    workers = start_workers(
        live_log_dir, subprocess_env(**env), ("classify", "respond", "tts"), tag="-stall"
    )
    yield server, fake, private_redis
    workers.stop()
    private_redis.kill()
    fake.close()


def test_a_hung_engine_costs_the_caller_the_engine_timeout_then_the_fallback(
    stalling_llm_stack, make_call
) -> None:
    server, fake, _ = stalling_llm_stack
    call = make_call(classifier_model="qwen2.5:1.5b", responder_model="llama3.2:1b")
    heard = Heard()

    async def scenario() -> float:
        async with await open_socket(server.ws_url(call.session_id), call.token) as ws:
            await hear_until(ws, heard, "ready")
            fake.mode, fake.slow_s = "slow", 600.0  # the model server stops answering
            sent_at = time.monotonic()
            await send_json(ws, type="text", text="Is anybody there?")
            await hear_until(ws, heard, "metrics")
            fake.mode = "ok"
            fake.release.set()  # stream the whole reply at once
            after = await answered(ws, heard, "Are you back?")
            assert after["text"] == "Hello there. How can I help?"
            return sent_at

    sent_at = asyncio.run(scenario())
    error = heard.of("error")[0]
    assert error["code"] == "pipeline_error"
    took = heard.time_of("error", code="pipeline_error") - sent_at
    print(f"the caller heard of the hung engine after {took:.2f} s")
    assert took < HUNG_ENGINE_TIMEOUT_S + FAILURE_BOUND_S
    assert heard.of("response.done")[0]["text"] == FALLBACK_LINE
    assert rms(bytes(heard.audio[heard.of("response.done")[0]["turn_id"]])) > 0.01
