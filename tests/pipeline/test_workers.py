"""The Celery workers on their own: real Redis, one real worker process per
queue, the local engines, and a test channel on the real channel layer in
place of the consumer (docs/pipeline.md is the contract checked here)."""

import asyncio
import base64
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from channels.layers import get_channel_layer
from django.conf import settings

from calls.models import Turn
from tests.speech import spoken
from voiceproj.celery import app as celery_app
from workers.audio import rms
from workers.graph import FALLBACK_LINE, FAREWELL_LINE
from workers.turnstate import turn_key

pytestmark = pytest.mark.e2e

# Local engines on 2 shared cores: a reply of a few sentences takes seconds.
TURN_TIMEOUT_S = 90.0


class Inbox:
    """A channel-layer channel read from a private event loop, like a consumer's."""

    def __init__(self, workers) -> None:
        self.workers = workers
        self.loop = asyncio.new_event_loop()
        self.layer = get_channel_layer()
        self.name = self.loop.run_until_complete(self.layer.new_channel("workers-test."))
        self.progress: list[dict] = []

    def receive(self, timeout: float) -> dict | None:
        """The next message other than a heartbeat (those are kept in ``progress``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self.loop.run_until_complete(
                    asyncio.wait_for(self.layer.receive(self.name), deadline - time.monotonic())
                )
            except TimeoutError:
                return None
            if message["type"] != "pipeline.progress":
                return message
            self.progress.append(message)

    def until_reply_done(self, turn_id: int) -> list[dict]:
        """Messages until the reply is done and all its sentences are spoken.

        ``reply_done`` comes from the responder and may overtake the TTS
        worker's last sentences, as it may at the consumer.
        """
        messages: list[dict] = []
        expected: int | None = None
        deadline = time.monotonic() + TURN_TIMEOUT_S
        while time.monotonic() < deadline:
            message = self.receive(deadline - time.monotonic())
            if message is None:
                break
            messages.append(message)
            if message["type"] == "pipeline.reply_done" and message["turn_id"] == turn_id:
                expected = message["sentences"]
            spoken = [m for m in messages if m["type"] == "pipeline.sentence_done"]
            if expected is not None and len(spoken) >= expected:
                return messages
        logs = "\n".join(f"--- {q}\n{self.workers.log(q)[-3000:]}" for q in self.workers.log_paths)
        raise AssertionError(f"no reply_done for turn {turn_id}; got {summary(messages)}\n{logs}")

    def close(self) -> None:
        self.loop.run_until_complete(self.layer.flush())
        self.loop.close()


def summary(messages: list[dict]) -> list[str]:
    return [m.get("event", {}).get("type") or m["type"] for m in messages]


@pytest.fixture
def channel(celery_workers) -> Iterator[Inbox]:
    test_channel = Inbox(celery_workers)
    yield test_channel
    test_channel.close()


@pytest.fixture
def turns() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def make_job(call, channel: Inbox, turn_id: int) -> dict:
    return {
        "session_id": call.session_id,
        "channel_name": channel.name,
        "turn_id": turn_id,
        "agent": call.agent.pipeline_config(),
        "t0": time.time(),
    }


def start_turn(turns: redis.Redis, call, turn_id: int) -> None:
    turns.set(turn_key(call.session_id), turn_id)


def send_text_turn(turns: redis.Redis, call, job: dict, text: str) -> None:
    """Make ``job``'s turn the call's current one and hand the caller's text to the dialog."""
    start_turn(turns, call, job["turn_id"])
    celery_app.send_task("workers.dialog.run_text_turn", args=[job], kwargs={"text": text})


def events(messages: list[dict], kind: str) -> list[dict]:
    return [
        m["event"] for m in messages if m["type"] == "pipeline.event" and m["event"]["type"] == kind
    ]


def assert_reply_contract(messages: list[dict], turn_id: int) -> dict:
    """Checks every reply must pass; returns the reply_done message."""
    assert all(m["turn_id"] == turn_id for m in messages)
    done = next(m for m in messages if m["type"] == "pipeline.reply_done")
    audio = [m for m in messages if m["type"] == "pipeline.audio"]
    finished = [m["sentence"] for m in messages if m["type"] == "pipeline.sentence_done"]
    # Sentences are numbered 0..k-1, each finished exactly once, and k is announced.
    assert sorted(finished) == list(range(done["sentences"]))
    assert done["sentences"] >= 1
    for message in audio:
        later_done = [
            i
            for i, m in enumerate(messages)
            if m["type"] == "pipeline.sentence_done" and m["sentence"] == message["sentence"]
        ]
        assert messages.index(message) < later_done[0], "audio after its sentence_done"
    assert rms(b"".join(m["pcm"] for m in audio)) > 0.01, "the reply is silent"
    return done


def test_text_turn_streams_intent_text_and_ordered_sentences_and_saves_the_turn(
    celery_workers, make_call, channel: Inbox, turns: redis.Redis
) -> None:
    call = make_call()
    send_text_turn(turns, call, make_job(call, channel, 1), "What time do you open tomorrow?")
    messages = channel.until_reply_done(1)
    done = assert_reply_contract(messages, 1)
    kinds = summary(messages)
    # A fallback instead of an intent: say which engine failed and show its log.
    assert "intent" in kinds, (events(messages, "error"), celery_workers.log("classify")[-1500:])
    # The intent is known before any of the reply is shown.
    assert kinds.index("intent") < kinds.index("response.delta")
    intent = events(messages, "intent")[0]["intent"]
    assert intent in call.agent.intent_names
    shown = "".join(e["text"] for e in events(messages, "response.delta"))
    assert " ".join(shown.split()) == " ".join(done["text"].split())
    assert done["end_call"] is False
    assert "*" not in done["text"] and "#" not in done["text"]
    metrics = events(messages, "metrics")[0]
    assert metrics["classify_ms"] is not None and metrics["first_token_ms"] is not None

    saved = {t.speaker: t for t in Turn.objects.filter(session_id=call.session_id, turn_id=1)}
    assert saved["user"].text == "What time do you open tomorrow?"
    assert saved["agent"].text == ""  # the call, not the worker, saves what was heard
    assert saved["agent"].intent == intent
    assert saved["agent"].classify_ms == metrics["classify_ms"]
    assert saved["agent"].first_token_ms == metrics["first_token_ms"]


def test_farewell_says_goodbye_and_ends_the_call(
    celery_workers, make_call, channel: Inbox, turns: redis.Redis
) -> None:
    # An agent whose only intent is farewell: the classifier can pick nothing else.
    call = make_call(intents=[{"name": "farewell", "description": "the caller says goodbye"}])
    send_text_turn(turns, call, make_job(call, channel, 1), "Thanks, that's all. Bye now.")
    messages = channel.until_reply_done(1)
    done = assert_reply_contract(messages, 1)
    assert done["end_call"] is True
    assert done["text"] == FAREWELL_LINE
    assert "".join(e["text"] for e in events(messages, "response.delta")) == FAREWELL_LINE
    agent_turn = Turn.objects.get(session_id=call.session_id, turn_id=1, speaker="agent")
    # The worker saves the intent; the text is the call's to save (what was heard).
    assert (agent_turn.intent, agent_turn.text) == ("farewell", "")


def test_spoken_turn_is_transcribed_saved_and_answered(
    celery_workers, make_call, channel: Inbox, turns: redis.Redis
) -> None:
    audio = spoken("What is the capital of France?")
    call = make_call()
    start_turn(turns, call, 1)
    celery_app.send_task(
        "workers.stt.transcribe",
        args=[make_job(call, channel, 1)],
        kwargs={"audio": base64.b64encode(audio).decode(), "sample_rate": 16000},
    )
    messages = channel.until_reply_done(1)
    assert summary(messages)[0] == "transcript"
    transcript = events(messages, "transcript")[0]
    assert "capital" in transcript["text"].lower() and "france" in transcript["text"].lower()
    assert_reply_contract(messages[1:], 1)
    stt_ms = [e["stt_ms"] for e in events(messages, "metrics") if "stt_ms" in e]
    user_turn = Turn.objects.get(session_id=call.session_id, turn_id=1, speaker="user")
    assert user_turn.text == transcript["text"]
    assert user_turn.stt_ms == stt_ms[0]


def test_greeting_is_spoken_as_turn_zero(
    celery_workers, make_call, channel: Inbox, turns: redis.Redis
) -> None:
    call = make_call(greeting="Hello! Thanks for calling. How can I help?")
    celery_app.send_task(
        "workers.tts.speak_text",
        args=[make_job(call, channel, 0)],
        kwargs={"text": "Hello! Thanks for calling. How can I help?"},
    )
    messages = channel.until_reply_done(0)
    done = assert_reply_contract(messages, 0)
    assert done["sentences"] == 3
    assert done["text"] == "Hello! Thanks for calling. How can I help?"


def test_a_stale_turn_stops_and_saves_nothing_for_the_agent(
    celery_workers, make_call, channel: Inbox, turns: redis.Redis
) -> None:
    call = make_call()
    send_text_turn(
        turns,
        call,
        make_job(call, channel, 1),
        "Tell me a long story about the sea, with many details.",
    )
    first = channel.receive(TURN_TIMEOUT_S)
    assert first is not None
    start_turn(turns, call, 2)  # the caller barged in
    after: list[dict] = []
    while (message := channel.receive(15.0)) is not None:
        after.append(message)
    assert "pipeline.reply_done" not in summary(after)
    # At most the chunk each worker was already sending when the turn went stale.
    assert len([m for m in after if m["type"] == "pipeline.audio"]) <= 2
    assert not Turn.objects.filter(session_id=call.session_id, speaker="agent").exists()


def test_an_engine_failure_gets_the_polite_fallback_and_an_error(
    celery_workers, make_call, channel: Inbox, turns: redis.Redis
) -> None:
    call = make_call()
    job = make_job(call, channel, 1)
    job["agent"]["intents"] = []  # nothing to classify into: the classifier fails
    send_text_turn(turns, call, job, "What time is it?")
    messages = channel.until_reply_done(1)
    done = assert_reply_contract(messages, 1)
    assert done["text"] == FALLBACK_LINE and done["end_call"] is False
    assert [e["code"] for e in events(messages, "error")] == ["pipeline_error"]
    assert not events(messages, "intent")
    agent_turn = Turn.objects.get(session_id=call.session_id, turn_id=1, speaker="agent")
    assert agent_turn.text == ""  # the call saves what was heard


def test_housekeeping_ends_abandoned_sessions_but_not_held_ones(
    celery_workers, make_call, turns: redis.Redis
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from calls.models import CallSession
    from calls.presence import presence_key

    abandoned, held = make_call(), make_call()
    long_ago = timezone.now() - timedelta(hours=2)
    CallSession.objects.filter(pk__in=[abandoned.session.pk, held.session.pk]).update(
        started_at=long_ago
    )
    turns.set(presence_key(held.session_id), "a-live-socket", ex=60)
    try:
        celery_app.send_task("workers.housekeeping.end_abandoned_sessions")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if CallSession.objects.get(pk=abandoned.session.pk).status == "ended":
                break
            time.sleep(0.2)
        ended = CallSession.objects.get(pk=abandoned.session.pk)
        assert (ended.status, ended.end_reason) == ("ended", "idle")
        assert CallSession.objects.get(pk=held.session.pk).status == "active"
    finally:
        turns.delete(presence_key(held.session_id))


def test_a_redelivered_job_runs_once_and_heartbeats_while_running(
    celery_workers, make_call, channel: Inbox, turns: redis.Redis
) -> None:
    call = make_call()
    start_turn(turns, call, 1)
    job = make_job(call, channel, 1)
    task_id = str(uuid.uuid4())
    for _ in range(2):  # the broker hands the same job out twice (a redelivery)
        celery_app.send_task(
            "workers.tts.synthesize",
            args=[job],
            kwargs={"sentence": 0, "text": "This sentence is spoken once."},
            task_id=task_id,
        )
    messages: list[dict] = []
    deadline = time.monotonic() + TURN_TIMEOUT_S
    while "redelivered" not in celery_workers.log("tts") and time.monotonic() < deadline:
        message = channel.receive(0.5)
        if message is not None:
            messages.append(message)
    while (message := channel.receive(1.0)) is not None:
        messages.append(message)
    assert [m["type"] for m in messages].count("pipeline.sentence_done") == 1
    audio = [m for m in messages if m["type"] == "pipeline.audio"]
    speech = b"".join(m["pcm"] for m in audio)
    seconds = len(speech) / 2 / audio[0]["sample_rate"]
    assert 1.0 < seconds < 4.0, "one sentence of speech, not two"
    beats = [m for m in channel.progress if m["task"] == task_id]
    assert beats[0]["running"] is True and beats[-1]["running"] is False


def test_a_soft_time_limit_is_enforced_and_reported_as_a_failed_turn(
    celery_workers, make_call, channel: Inbox, turns: redis.Redis
) -> None:
    """The prefork pool interrupts a task past its soft limit, and the call
    hears of it at once (a per-call override stands in for a slow task)."""
    call = make_call()
    start_turn(turns, call, 1)
    story = " ".join(f"This is sentence number {n} of a long story." for n in range(40))
    celery_app.send_task(
        "workers.tts.speak_text",
        args=[make_job(call, channel, 1)],
        kwargs={"text": story},
        soft_time_limit=0.3,
    )
    deadline = time.monotonic() + TURN_TIMEOUT_S
    failed = None
    while failed is None and time.monotonic() < deadline:
        message = channel.receive(1.0)
        if message is not None and message["type"] == "pipeline.turn_failed":
            failed = message
    assert failed is not None, celery_workers.log("tts")[-2000:]
    assert (failed["turn_id"], failed["task"], failed["reason"]) == (
        1,
        "workers.tts.speak_text",
        "SoftTimeLimitExceeded",
    )
