"""Wire protocol v1 against a real daphne process with a real WebSocket client.

The worker side is played by the test itself through the real Redis channel
layer (the ``pipeline.*`` messages of docs/pipeline.md), so ordering, stale
turns, barge-in and metrics are checked without loading models. The server's
Celery tasks go to an in-memory broker, so real workers started by other tests
of the session never answer these turns; the full path with real workers is in
test_e2e*.py.
"""

import asyncio
import base64
import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest
import redis
import soxr
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from calls.models import CallSession, Turn
from calls.presence import presence_key
from calls.protocol import ERROR_CODES
from calls.services import end_session
from examples.voice_client import open_session, talk
from workers.turnstate import current_turn

from .wire import close_code, frames, next_event, open_socket, send_json, stream_realtime

pytestmark = pytest.mark.e2e
DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DATA = Path(__file__).resolve().parents[1] / "data"


def speech_16k() -> bytes:
    with wave.open(str(DATA / "question_16k.wav"), "rb") as wav:
        return wav.readframes(wav.getnframes())


def tone(ms: int, rate: int = 22050) -> bytes:
    """Distinct non-silent PCM16 chunk content, so ordering is checkable."""
    return bytes([ms % 251, 1]) * (rate * ms // 1000)


def channel_of(session_id: str) -> str:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return client.get(presence_key(session_id)).decode()
    finally:
        client.close()


async def worker_send(session_id: str, message: dict) -> None:
    await get_channel_layer().send(channel_of(session_id), message)


async def connected(server, call):
    ws = await open_socket(server.ws_url(call.session_id), token=call.token)
    await next_event(ws, "ready")
    return ws


async def expect_error(ws, code: str) -> dict:
    event = await next_event(ws)
    assert event["type"] == "error", event
    assert event["code"] == code, event
    assert event["message"]
    return event


async def read_until(ws, type_: str) -> list:
    """Every message (audio as bytes, events as dicts) up to an event of ``type_``."""
    received: list = []
    async with asyncio.timeout(10):
        while True:
            message = await ws.recv()
            received.append(message if isinstance(message, bytes) else json.loads(message))
            if isinstance(received[-1], dict) and received[-1]["type"] == type_:
                return received


async def still_alive(ws) -> None:
    await send_json(ws, type="ping")
    assert await next_event(ws) == {"type": "pong"}


async def error_codes_before_pong(ws) -> list[str]:
    """Ping, then the codes of the errors answered before the pong."""
    await send_json(ws, type="ping")
    codes = []
    while (event := await next_event(ws))["type"] != "pong":
        codes.append(event["code"])
    return codes


def test_ping_pong(workerless_server, make_call):
    call = make_call()

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            await still_alive(ws)
            await still_alive(ws)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ("[" * 60_000, "bad_json"),  # nested past Python's recursion limit
        ('{"text": "no type"}', "bad_message"),
        ('{"type": "dance"}', "unknown_type"),
        # Echoed whole, these made an error event over the 128 KiB transport
        # limit (each é escapes to 6 bytes) and the socket closed with 1011.
        (json.dumps({"type": "\u00e9" * 30_000}, ensure_ascii=False), "unknown_type"),
        ('{"type": "start", "sample_rate": 12345}', "bad_sample_rate"),
        ('{"type": "start", "sample_rate": "16000"}', "bad_sample_rate"),
        (
            json.dumps({"type": "start", "sample_rate": "\u00e9" * 30_000}, ensure_ascii=False),
            "bad_sample_rate",
        ),
        ('{"type": "text", "text": 42}', "bad_message"),
        ('{"type": "text", "text": "a\\u0000b"}', "bad_message"),  # PostgreSQL stores no NUL
        ('{"type": "text", "text": "\\ud800 hi"}', "bad_message"),  # nor unpaired surrogates
        ('{"type": "text", "text": "   "}', "empty_text"),
        (json.dumps({"type": "text", "text": "x" * 2001}), "text_too_long"),
        (json.dumps({"type": "ping", "pad": "x" * 70000}), "message_too_large"),
    ],
)
def test_bad_messages_get_error_codes_and_the_call_goes_on(
    workerless_server, make_call, message, code
):
    call = make_call()

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            await ws.send(message)
            await expect_error(ws, code)
            await still_alive(ws)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x01\x02\x03", "bad_frame"),  # odd length: not whole samples
        (b"\0" * 100, "bad_frame"),  # 3 ms at 16 kHz
        (b"\0" * 32002, "frame_too_large"),  # 1000.06 ms at 16 kHz
        # 4 s in one frame, at the transport limit (larger messages close with
        # 1009 before the consumer sees them: test_transport_limits.py)
        (b"\0" * 131_072, "frame_too_large"),
    ],
)
def test_bad_frames_get_error_codes_and_the_call_goes_on(workerless_server, make_call, frame, code):
    call = make_call()

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            await ws.send(frame)
            await expect_error(ws, code)
            await ws.send(b"\0" * 640)  # a valid 20 ms frame is accepted silently
            await still_alive(ws)

    asyncio.run(scenario())


def test_frame_limits_follow_the_started_rate(workerless_server, make_call):
    call = make_call()

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            await send_json(ws, type="start", sample_rate=48000)
            await ws.send(b"\0" * 96000)  # 1000 ms at 48 kHz: the maximum
            await send_json(ws, type="start", sample_rate=16000)
            await expect_error(ws, "already_started")
            await ws.send(b"\0" * 96002)
            await expect_error(ws, "frame_too_large")
            await still_alive(ws)

    asyncio.run(scenario())


def test_flood_is_rate_limited_and_other_calls_are_unaffected(workerless_server, make_call):
    flooder = make_call()
    neighbour = make_call()

    async def scenario():
        async with (
            await connected(workerless_server, flooder) as ws,
            await connected(workerless_server, neighbour) as other,
        ):
            frame = b"\0" * 640  # 20 ms
            for _ in range(1000):  # 20 s of audio at once
                await ws.send(frame)
            await expect_error(ws, "rate_limited")
            for _ in range(100):
                await ws.send("{garbage")
            # The flooder's socket survives; once quiet, it is served again.
            await asyncio.sleep(1.1)
            codes = await error_codes_before_pong(ws)
            # Some garbage was answered, the rest was dropped by the message limit
            # (its rate_limited report is at most one per second).
            assert "bad_json" in codes and set(codes) <= {"bad_json", "rate_limited"}
            assert len(codes) < 100
            # The neighbour never saw any of it and is answered at once.
            await still_alive(other)

    asyncio.run(scenario())


def test_a_flood_of_bad_frames_gets_a_bounded_number_of_errors(workerless_server, make_call):
    call = make_call()

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            for _ in range(200):
                await ws.send(b"\x01\x02\x03")
            await asyncio.sleep(0.5)
            return await error_codes_before_pong(ws)

    codes = asyncio.run(scenario())
    assert codes[0] == "bad_frame"
    assert set(codes) <= {"bad_frame", "rate_limited"}
    assert len(codes) < 50  # answered up to the error budget, the rest dropped


def test_speech_is_endpointed_into_a_turn(workerless_server, make_call):
    call = make_call()

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            silence = b"\0" * 32000
            await stream_realtime(ws, silence[:16000] + speech_16k() + silence, 16000)
            started = await next_event(ws)
            stopped = await next_event(ws)
            return started, stopped

    started, stopped = asyncio.run(scenario())
    assert started == {"type": "speech.started", "turn_id": 1}
    assert stopped == {"type": "speech.stopped", "turn_id": 1}


def test_speech_at_48k_is_resampled(workerless_server, make_call):
    call = make_call()
    samples = np.frombuffer(speech_16k(), dtype="<i2")
    speech_48k = soxr.resample(samples, 16000, 48000).astype("<i2").tobytes()

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            await send_json(ws, type="start", sample_rate=48000)
            await stream_realtime(ws, speech_48k + b"\0" * 96000 * 2, 48000)
            return [(await next_event(ws))["type"], (await next_event(ws))["type"]]

    assert asyncio.run(scenario()) == ["speech.started", "speech.stopped"]


def test_end_sends_ended_closes_1000_and_ends_the_session(workerless_server, make_call):
    call = make_call()

    async def scenario():
        ws = await connected(workerless_server, call)
        await send_json(ws, type="end")
        ended = await next_event(ws)
        return ended, await close_code(ws)

    assert asyncio.run(scenario()) == ({"type": "ended", "reason": "hangup"}, 1000)
    call.session.refresh_from_db()
    assert call.session.status == CallSession.Status.ENDED
    assert call.session.end_reason == "hangup"


def test_session_ended_through_the_api_is_ended_on_the_socket_too(workerless_server, make_call):
    call = make_call()

    async def scenario():
        ws = await connected(workerless_server, call)
        await database_sync_to_async(end_session)(call.session, "operator")
        ended = await next_event(ws, timeout=15)
        return ended, await close_code(ws)

    assert asyncio.run(scenario()) == ({"type": "ended", "reason": "operator"}, 1000)


def test_a_session_deleted_under_the_call_ends_the_call(workerless_server, make_call):
    """Its owner's account deleted: the call closes instead of failing each heartbeat."""
    call = make_call()

    async def scenario():
        ws = await connected(workerless_server, call)
        await database_sync_to_async(call.user.delete)()
        ended = await next_event(ws, timeout=15)
        return ended, await close_code(ws)

    assert asyncio.run(scenario()) == ({"type": "ended", "reason": "deleted"}, 1000)


def test_reply_audio_is_relayed_in_sentence_order_with_metrics(workerless_server, make_call):
    call = make_call()
    s0 = [tone(100), tone(120)]
    s1 = [tone(140), tone(160)]

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            await send_json(ws, type="text", text="Tell me two things.")
            sid = call.session_id
            while current_turn(sid) != 1:
                await asyncio.sleep(0.01)

            def audio(n, pcm):
                return {
                    "type": "pipeline.audio",
                    "turn_id": 1,
                    "sentence": n,
                    "sample_rate": 22050,
                    "pcm": pcm,
                }

            # Sentence 1 was synthesized first, by another TTS worker.
            await worker_send(
                sid,
                {
                    "type": "pipeline.event",
                    "turn_id": 1,
                    "event": {"type": "intent", "turn_id": 1, "intent": "command"},
                },
            )
            for pcm in s1:
                await worker_send(sid, audio(1, pcm))
            await worker_send(
                sid,
                {
                    "type": "pipeline.sentence_done",
                    "turn_id": 1,
                    "sentence": 1,
                    "text": "Second thing.",
                },
            )
            # A stale turn's message is dropped.
            await worker_send(
                sid,
                {
                    "type": "pipeline.event",
                    "turn_id": 0,
                    "event": {"type": "transcript", "turn_id": 0, "text": "old", "final": True},
                },
            )
            for pcm in s0:
                await worker_send(sid, audio(0, pcm))
            await worker_send(
                sid,
                {
                    "type": "pipeline.sentence_done",
                    "turn_id": 1,
                    "sentence": 0,
                    "text": "First thing.",
                },
            )
            # The responder's timings are merged into the consumer's metrics event.
            await worker_send(
                sid,
                {
                    "type": "pipeline.event",
                    "turn_id": 1,
                    "event": {
                        "type": "metrics",
                        "turn_id": 1,
                        "classify_ms": 123,
                        "first_token_ms": 45,
                    },
                },
            )
            await worker_send(
                sid,
                {
                    "type": "pipeline.reply_done",
                    "turn_id": 1,
                    "text": "First thing. Second thing.",
                    "sentences": 2,
                    "end_call": False,
                },
            )
            received = await read_until(ws, "metrics")
            # Read while the caller is still on the line: hanging up before
            # the 0.52 s of audio has played would save the turn interrupted.
            turn = await database_sync_to_async(Turn.objects.get)(
                session=call.session, turn_id=1, speaker="agent"
            )
            return received, turn

    received, turn = asyncio.run(scenario())
    kinds = [m if isinstance(m, bytes) else m["type"] for m in received]
    assert kinds == ["intent", "audio.start", *s0, *s1, "audio.end", "response.done", "metrics"]
    assert received[1] == {"type": "audio.start", "turn_id": 1, "sample_rate": 22050}
    assert received[-2] == {
        "type": "response.done",
        "turn_id": 1,
        "text": "First thing. Second thing.",
        "interrupted": False,
    }
    metrics = received[-1]
    assert set(metrics) == {
        "type",
        "turn_id",
        "stt_ms",
        "classify_ms",
        "first_token_ms",
        "first_audio_ms",
        "total_ms",
    }
    assert metrics["total_ms"] >= metrics["first_audio_ms"] >= 0
    # A typed turn has no STT; the workers' timings are in the one metrics event.
    assert (metrics["stt_ms"], metrics["classify_ms"], metrics["first_token_ms"]) == (None, 123, 45)
    assert (turn.first_audio_ms, turn.total_ms) == (metrics["first_audio_ms"], metrics["total_ms"])
    assert turn.text == "First thing. Second thing." and not turn.interrupted


def test_interrupt_stops_the_audio_and_saves_what_was_said(workerless_server, make_call):
    call = make_call()

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            sid = call.session_id
            await send_json(ws, type="text", text="Tell me a long story.")
            while current_turn(sid) != 1:
                await asyncio.sleep(0.01)
            for n, text in enumerate(["Once upon a time.", "There was a dragon."]):
                await worker_send(
                    sid,
                    {
                        "type": "pipeline.audio",
                        "turn_id": 1,
                        "sentence": n,
                        "sample_rate": 22050,
                        "pcm": tone(200),
                    },
                )
                if n == 0:
                    await worker_send(
                        sid,
                        {
                            "type": "pipeline.sentence_done",
                            "turn_id": 1,
                            "sentence": 0,
                            "text": text,
                        },
                    )
            await next_event(ws, "audio.start")
            # Sentence 1's audio plays only once sentence 0 is done: the call
            # has processed both worker messages before the interrupt.
            for _ in range(2):
                assert isinstance(await ws.recv(), bytes)
            await send_json(ws, type="interrupt")
            interrupted = await next_event(ws)
            done = await next_event(ws)
            # The workers of turn 1 are now stale: their audio no longer reaches us.
            await worker_send(
                sid,
                {
                    "type": "pipeline.audio",
                    "turn_id": 1,
                    "sentence": 1,
                    "sample_rate": 22050,
                    "pcm": tone(200),
                },
            )
            await still_alive(ws)
            return interrupted, done

    interrupted, done = asyncio.run(scenario())
    assert interrupted == {"type": "interrupted", "turn_id": 1}
    assert done == {
        "type": "response.done",
        "turn_id": 1,
        "text": "Once upon a time.",
        "interrupted": True,
    }
    assert current_turn(call.session_id) == 2
    turn = Turn.objects.get(session=call.session, turn_id=1, speaker="agent")
    assert turn.interrupted and turn.text == "Once upon a time."


def test_farewell_reply_ends_the_session(workerless_server, make_call):
    call = make_call()

    async def scenario():
        ws = await connected(workerless_server, call)
        sid = call.session_id
        await send_json(ws, type="text", text="Bye!")
        while current_turn(sid) != 1:
            await asyncio.sleep(0.01)
        await worker_send(
            sid,
            {
                "type": "pipeline.audio",
                "turn_id": 1,
                "sentence": 0,
                "sample_rate": 22050,
                "pcm": tone(300),
            },
        )
        await worker_send(
            sid, {"type": "pipeline.sentence_done", "turn_id": 1, "sentence": 0, "text": "Goodbye!"}
        )
        await worker_send(
            sid,
            {
                "type": "pipeline.reply_done",
                "turn_id": 1,
                "text": "Goodbye!",
                "sentences": 1,
                "end_call": True,
            },
        )
        ended = await next_event(ws, "ended")
        return ended, await close_code(ws)

    assert asyncio.run(scenario()) == ({"type": "ended", "reason": "farewell"}, 1000)
    call.session.refresh_from_db()
    assert (call.session.status, call.session.end_reason) == ("ended", "farewell")


def test_idle_call_is_ended(live_server_factory, make_call):
    server = live_server_factory(VOICE_IDLE_TIMEOUT_S="1", CELERY_BROKER_URL="memory://")
    call = make_call()

    async def scenario():
        ws = await connected(server, call)
        for frame in frames(b"\0" * 32000, 16000):  # a silent microphone is not activity
            await ws.send(frame)
        ended = await next_event(ws, "ended")
        return ended, await close_code(ws)

    assert asyncio.run(scenario()) == ({"type": "ended", "reason": "idle"}, 1000)
    call.session.refresh_from_db()
    assert (call.session.status, call.session.end_reason) == ("ended", "idle")


def test_disconnect_ends_the_session_after_the_grace_period_unless_reconnected(
    live_server_factory, make_call
):
    server = live_server_factory(VOICE_DISCONNECT_GRACE_S="1.5", CELERY_BROKER_URL="memory://")
    gone = make_call()
    back = make_call()

    async def scenario():
        for call in (gone, back):
            ws = await connected(server, call)
            await ws.close()
        ws = await connected(server, back)  # within the grace period
        await asyncio.sleep(3)
        await still_alive(ws)
        await ws.close()

    asyncio.run(scenario())
    gone.session.refresh_from_db()
    assert (gone.session.status, gone.session.end_reason) == ("ended", "disconnected")
    back.session.refresh_from_db()
    assert back.session.status == "active"


def test_every_error_code_is_documented():
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    assert set(ERROR_CODES) <= documented


def test_greeting_is_turn_0_and_relayed(workerless_server, make_call):
    call = make_call(greeting="Hello there!")

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            sid = call.session_id
            for message in (
                {
                    "type": "pipeline.audio",
                    "turn_id": 0,
                    "sentence": 0,
                    "sample_rate": 22050,
                    "pcm": tone(200),
                },
                {
                    "type": "pipeline.sentence_done",
                    "turn_id": 0,
                    "sentence": 0,
                    "text": "Hello there!",
                },
                {
                    "type": "pipeline.reply_done",
                    "turn_id": 0,
                    "text": "Hello there!",
                    "sentences": 1,
                    "end_call": False,
                },
            ):
                await worker_send(sid, message)
            return await read_until(ws, "metrics")

    received = asyncio.run(scenario())
    assert received[0] == {"type": "audio.start", "turn_id": 0, "sample_rate": 22050}
    assert received[-2]["type"] == "response.done" and received[-2]["turn_id"] == 0
    greeting = Turn.objects.get(session=call.session, turn_id=0, speaker="agent")
    assert greeting.text == "Hello there!" and greeting.first_audio_ms is not None


def test_speaking_over_the_agent_barges_in(workerless_server, make_call):
    call = make_call()

    async def scenario():
        async with await connected(workerless_server, call) as ws:
            sid = call.session_id
            await send_json(ws, type="text", text="Read me the news.")
            while current_turn(sid) != 1:
                await asyncio.sleep(0.01)
            # A complete reply whose 10 s of audio the client is still playing.
            for message in (
                {
                    "type": "pipeline.audio",
                    "turn_id": 1,
                    "sentence": 0,
                    "sample_rate": 22050,
                    "pcm": tone(10000),
                },
                {
                    "type": "pipeline.sentence_done",
                    "turn_id": 1,
                    "sentence": 0,
                    "text": "Here is the news.",
                },
                {
                    "type": "pipeline.reply_done",
                    "turn_id": 1,
                    "text": "Here is the news.",
                    "sentences": 1,
                    "end_call": False,
                },
            ):
                await worker_send(sid, message)
            await read_until(ws, "metrics")
            await stream_realtime(ws, speech_16k()[:16000], 16000)  # first second of speech
            return await next_event(ws), await next_event(ws)

    interrupted, started = asyncio.run(scenario())
    assert interrupted == {"type": "interrupted", "turn_id": 1}
    assert started == {"type": "speech.started", "turn_id": 2}
    turn = Turn.objects.get(session=call.session, turn_id=1, speaker="agent")
    assert turn.interrupted and turn.text == "Here is the news."


def test_example_client_logs_in_streams_a_wav_and_saves_the_answer(
    workerless_server, make_call, tmp_path
):
    call = make_call()
    ws_url, token = open_session(
        workerless_server.url, call.user.username, call.password, call.agent.id
    )
    session_id = ws_url.rstrip("/").rsplit("/", 1)[1]
    answer = [tone(400), tone(300)]
    out = tmp_path / "reply.wav"
    seen: list[str] = []
    replies: list[asyncio.Task] = []

    async def answer_turn(turn_id: int) -> None:
        sid = session_id
        for n, pcm in enumerate(answer):
            await worker_send(
                sid,
                {
                    "type": "pipeline.audio",
                    "turn_id": turn_id,
                    "sentence": n,
                    "sample_rate": 22050,
                    "pcm": pcm,
                },
            )
            await worker_send(
                sid,
                {
                    "type": "pipeline.sentence_done",
                    "turn_id": turn_id,
                    "sentence": n,
                    "text": f"Part {n}.",
                },
            )
        await worker_send(
            sid,
            {
                "type": "pipeline.reply_done",
                "turn_id": turn_id,
                "text": "Part 0. Part 1.",
                "sentences": 2,
                "end_call": False,
            },
        )

    def on_event(event: dict) -> None:
        seen.append(event["type"])
        if event["type"] == "speech.stopped":  # the STT worker's cue, played by the test
            replies.append(asyncio.create_task(answer_turn(event["turn_id"])))

    asyncio.run(talk(ws_url, token, speech_16k(), 16000, out, on_event=on_event))

    assert seen[:3] == ["ready", "speech.started", "speech.stopped"]
    assert seen[-1] == "ended"
    with wave.open(str(out), "rb") as wav:
        assert wav.getframerate() == 22050
        assert wav.readframes(wav.getnframes()) == b"".join(answer)
    session = CallSession.objects.get(pk=session_id)
    assert (session.status, session.end_reason) == ("ended", "hangup")


@pytest.fixture(scope="module")
def broker_spy(live_server_factory):
    """A daphne publishing to a Redis database of its own, read by the test.

    The database number is derived from the test's (never a fixed one) so that
    real workers of other tests, listening on the test broker, do not take
    the tasks this test inspects.
    """
    base = redis.Redis.from_url(settings.REDIS_URL)
    db = (base.connection_pool.connection_kwargs.get("db", 0) + 8) % 16
    kwargs = base.connection_pool.connection_kwargs
    url = f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{db}"
    spy = redis.Redis.from_url(url)
    spy.delete("stt", "respond", "tts")
    yield live_server_factory(CELERY_BROKER_URL=url), spy
    spy.delete("stt", "respond", "tts")
    spy.close()
    base.close()


def take_task(spy, queue: str) -> tuple[str, list, dict]:
    """Pop one Celery task message from ``queue``: (task name, args, kwargs)."""
    popped = spy.brpop([queue], timeout=10)
    assert popped is not None, f"no task on queue {queue}"
    message = json.loads(popped[1])
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    return message["headers"]["task"], args, kwargs


def test_tasks_carry_the_job_of_the_pipeline_contract(broker_spy, make_call):
    server, spy = broker_spy
    call = make_call(
        greeting="Welcome!",
        name="Ada",
        intents=[
            {"name": "question", "description": "asks"},
            {"name": "farewell", "description": "bye"},
        ],
    )

    async def scenario():
        async with await connected(server, call) as ws:
            greeting = await asyncio.to_thread(take_task, spy, "tts")
            await send_json(ws, type="text", text="What is new?")
            typed = await asyncio.to_thread(take_task, spy, "respond")
            await stream_realtime(ws, speech_16k() + b"\0" * 32000, 16000)
            early = await asyncio.to_thread(take_task, spy, "stt")
            spoken = await asyncio.to_thread(take_task, spy, "stt")
            return greeting, typed, early, spoken

    greeting, typed, early, spoken = asyncio.run(scenario())
    name, (job,), extra = greeting
    assert name == "workers.tts.speak_text" and extra == {"text": "Welcome!"}
    assert job["session_id"] == call.session_id and job["turn_id"] == 0
    assert "specific." in job["channel_name"]  # the call's own channel
    assert job["agent"]["greeting"] == "Welcome!" and job["agent"]["name"] == "Ada"
    assert set(job["agent"]) == {
        "id",
        "name",
        "system_prompt",
        "greeting",
        "language",
        "intents",
        "routes",
        "classifier_model",
        "classifier_temperature",
        "responder_model",
        "responder_temperature",
        "voice",
        "examples",
        "tools",
    }
    assert job["agent"]["tools"] == []  # specs only; URLs and secrets stay in the database
    assert [i["name"] for i in job["agent"]["intents"]] == ["question", "farewell"]
    assert job["agent"]["routes"] == {}
    assert isinstance(job["t0"], float)

    name, (job,), extra = typed
    assert (name, extra, job["turn_id"]) == (
        "workers.dialog.run_text_turn",
        {"text": "What is new?"},
        1,
    )
    # The respond worker reads the history itself: the call reads no rows per turn.
    assert "history" not in job

    name, (job,), extra = spoken
    assert name == "workers.stt.transcribe" and job["turn_id"] == 2
    assert extra["sample_rate"] == 16000
    audio = base64.b64decode(extra["audio"])
    # The utterance: the whole question with pre-roll and trailing silence.
    assert 2.5 <= len(audio) / 32000 <= 4.0
    # Sent first, while the caller had paused: the same speech, less the end
    # of the silence; the utterance's task points to it.
    name, (early_job,), early_extra = early
    assert name == "workers.stt.transcribe_early" and early_job["turn_id"] == 2
    assert early_extra["pause"] == extra["early_pause"] == 1
    early_audio = base64.b64decode(early_extra["audio"])
    assert audio.startswith(early_audio) and len(early_audio) < len(audio)
