"""The call core on its own, without daphne or workers: a recording transport,
the real Redis and database, and Celery publishing into an in-memory broker
that the test reads back. Worker messages are fed to the core as the channel
layer would deliver them."""

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from celery import Celery
from django.test import override_settings

from calls.core import MAX_AUDIO_PIECE, CallCore
from calls.models import Turn
from calls.services import start_session
from voiceproj.pipeline import FALLBACK_LINE, SPEAK_TASK, TASK_QUEUES, TEXT_TURN_TASK

CHANNEL = "specific.core-test!1"


@dataclass
class Recorder:
    """A transport that keeps what the core said."""

    confirms_playback: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)
    sent_sentences: list[tuple[int, int]] = field(default_factory=list)
    closed: int | None = None

    async def send_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    async def send_audio(self, pcm: bytes, sample_rate: int) -> None:
        self.audio.append(pcm)

    async def sentence_sent(self, turn_id: int, sentence: int) -> None:
        self.sent_sentences.append((turn_id, sentence))

    async def close(self, code: int) -> None:
        self.closed = code

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


@pytest.fixture
def broker() -> Iterator[Celery]:
    app = Celery("core-test", broker="memory://")
    published(app)  # the memory broker is per process: start from empty queues
    yield app
    app.close()


def published(broker: Celery) -> list[tuple[str, dict, dict]]:
    """Every task published so far: (task name, job, keyword arguments)."""
    found = []
    with broker.connection() as connection:
        for queue in sorted(set(TASK_QUEUES.values())):
            simple = connection.SimpleQueue(queue)
            while simple.qsize():
                message = simple.get(timeout=1)
                args, kwargs, _ = message.payload
                found.append((message.headers["task"], args[0], kwargs))
                message.ack()
            simple.close()
    return found


@pytest.fixture
def session(transactional_db, agent, user):
    return start_session(agent, user)


def run(core_test) -> None:
    asyncio.run(core_test())


async def started(session, broker: Celery, transport: Recorder) -> CallCore:
    core = CallCore(str(session.id), CHANNEL, transport, publish=broker.send_task)
    assert await core.admit(session.user_id) is None
    core.greet = False  # these tests are about turns, not the greeting
    await core.start()
    return core


def worker_says(core: CallCore, kind: str, turn_id: int, **fields: Any) -> Any:
    return core.on_pipeline({"type": f"pipeline.{kind}", "turn_id": turn_id, **fields})


async def speak(core: CallCore, turn_id: int, sentences: list[str], rate: int = 8000) -> None:
    """What the tts worker sends for a reply of ``sentences`` (0.1 s of audio each)."""
    for n, text in enumerate(sentences):
        await worker_says(core, "audio", turn_id, sentence=n, sample_rate=rate, pcm=bytes(1600))
        await worker_says(core, "sentence_done", turn_id, sentence=n, text=text)


def test_turns_are_numbered_and_a_stale_turns_messages_are_dropped(session, broker):
    transport = Recorder()

    async def scenario() -> None:
        core = await started(session, broker, transport)
        await core.text("What are your hours?")
        await core.text("Actually, where are you?")
        await worker_says(core, "event", 1, event={"type": "intent", "turn_id": 1, "intent": "x"})
        await worker_says(core, "event", 2, event={"type": "intent", "turn_id": 2, "intent": "x"})
        await core.stop()

    run(scenario)
    jobs = published(broker)
    assert [(name, job["turn_id"], kw["text"]) for name, job, kw in jobs] == [
        (TEXT_TURN_TASK, 1, "What are your hours?"),
        (TEXT_TURN_TASK, 2, "Actually, where are you?"),
    ]
    assert jobs[0][1]["channel_name"] == CHANNEL
    assert [e["turn_id"] for e in transport.events if e["type"] == "intent"] == [2]


def test_reply_audio_goes_out_in_sentence_order_then_done_and_saved(session, broker):
    transport = Recorder()

    async def scenario() -> None:
        core = await started(session, broker, transport)
        await core.text("Tell me two things.")
        await worker_says(core, "audio", 1, sentence=1, sample_rate=8000, pcm=b"B" * 160)
        await worker_says(core, "audio", 1, sentence=0, sample_rate=8000, pcm=b"A" * 160)
        await worker_says(core, "sentence_done", 1, sentence=1, text="Second.")
        await worker_says(core, "reply_done", 1, text="First. Second.", sentences=2)
        assert "response.done" not in transport.types()  # sentence 0 still playing
        await worker_says(core, "sentence_done", 1, sentence=0, text="First.")
        agent = await asyncio.to_thread(
            Turn.objects.get, session=session, turn_id=1, speaker="agent"
        )
        assert (agent.text, agent.interrupted) == ("First. Second.", False)
        assert agent.first_audio_ms is not None and agent.total_ms is not None
        await core.stop()

    run(scenario)
    assert transport.audio == [b"A" * 160, b"B" * 160]
    assert transport.types().count("audio.start") == 1
    assert transport.types()[-3:] == ["audio.end", "response.done", "metrics"]
    assert transport.sent_sentences == [(1, 0), (1, 1)]


def test_barge_in_saves_only_what_was_heard(session, broker):
    transport = Recorder(confirms_playback=True)  # a phone: heard when its mark returns

    async def scenario() -> None:
        core = await started(session, broker, transport)
        await core.text("Tell me a story.")
        await speak(core, 1, ["Once upon a time.", "There was a sea.", "It was deep."])
        core.playback_reached(1, 0)  # only the first sentence's mark came back
        await core.interrupt()
        await core.stop()

    run(scenario)
    done = [e for e in transport.events if e["type"] == "response.done"]
    assert done == [
        {"type": "response.done", "turn_id": 1, "text": "Once upon a time.", "interrupted": True}
    ]
    assert "interrupted" in transport.types()
    agent = Turn.objects.get(session=session, turn_id=1, speaker="agent")
    assert (agent.text, agent.interrupted) == ("Once upon a time.", True)


def test_limits_bad_frames_floods_and_long_text_are_answered_with_codes(session, broker):
    transport = Recorder()

    async def scenario() -> None:
        core = await started(session, broker, transport)
        await core.guarded(core.audio(b"\0" * 321))  # half a sample
        await core.guarded(core.audio(b"\0" * 64000))  # 2 s in one frame
        await core.guarded(core.text("x" * 100_000))
        for _ in range(400):  # 400 frames of 10 ms at once: far past 3x real time
            await core.guarded(core.audio(b"\0" * 320))
        await core.stop()

    run(scenario)
    codes = [e["code"] for e in transport.events if e["type"] == "error"]
    assert codes[:3] == ["bad_frame", "frame_too_large", "text_too_long"]
    assert codes.count("rate_limited") == 1  # reported once per second, not per frame
    assert published(broker) == []


def test_large_audio_chunks_are_split_below_the_transport_limit(session, broker):
    transport = Recorder()

    async def scenario() -> None:
        core = await started(session, broker, transport)
        await core.text("Say something long.")
        chunk = bytes(200_000)
        await worker_says(core, "audio", 1, sentence=0, sample_rate=22050, pcm=chunk)
        await core.stop()

    run(scenario)
    assert b"".join(transport.audio) == bytes(200_000)
    assert max(map(len, transport.audio)) <= MAX_AUDIO_PIECE
    assert all(len(piece) % 2 == 0 for piece in transport.audio)


@override_settings(VOICE_TURN_QUEUE_S=0.3, VOICE_TURN_STALL_S=0.3)
def test_the_watchdog_fails_a_silent_turn_over_to_the_fallback_line(session, broker):
    transport = Recorder()

    async def scenario() -> None:
        core = await started(session, broker, transport)
        await core.text("Hello?")
        await worker_says(core, "progress", 1, task="t1", running=True)
        deadline = time.monotonic() + 5
        while "turn_failed" not in str(transport.events) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        fallback_turn = core.turn_id
        await speak(core, fallback_turn, [FALLBACK_LINE])
        await worker_says(core, "reply_done", fallback_turn, text=FALLBACK_LINE, sentences=1)
        await core.stop()

    run(scenario)
    errors = [e for e in transport.events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["turn_failed"]
    done = [e for e in transport.events if e["type"] == "response.done"]
    assert done == [
        {"type": "response.done", "turn_id": 1, "text": FALLBACK_LINE, "interrupted": False}
    ]
    names = [(name, job["turn_id"]) for name, job, _ in published(broker)]
    assert names == [(TEXT_TURN_TASK, 1), (SPEAK_TASK, 2)]
    assert Turn.objects.get(session=session, turn_id=1, speaker="agent").text == FALLBACK_LINE


def test_a_worker_message_that_breaks_the_relay_fails_the_turn_not_the_call(session, broker):
    transport = Recorder()

    async def scenario() -> None:
        core = await started(session, broker, transport)
        await core.text("Hello?")
        await worker_says(core, "audio", 1, sentence=0)  # no audio, no rate: malformed
        await core.text("Hello again?")  # the call goes on
        await worker_says(core, "event", 3, event={"type": "intent", "turn_id": 3, "intent": "x"})
        await core.stop()

    run(scenario)
    assert [e["code"] for e in transport.events if e["type"] == "error"] == ["turn_failed"]
    assert [e["turn_id"] for e in transport.events if e["type"] == "intent"] == [3]
    assert sorted((job["turn_id"], name) for name, job, _ in published(broker)) == [
        (1, TEXT_TURN_TASK),
        (2, SPEAK_TASK),  # the fallback line of the failed turn
        (3, TEXT_TURN_TASK),
    ]
