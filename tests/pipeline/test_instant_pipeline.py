"""End to end on the instant engines: a real WebSocket client ↔ real daphne ↔
real Celery workers per queue with ``VOICE_STT/LLM/TTS=instant``, on a Redis
database of their own (``instant_stack``), so the default-engine workers of
other tests never see these turns and these workers never answer theirs."""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.test import override_settings

from workers.audio import SAMPLE_WIDTH, read_wav
from workers.engines.instant import (
    REPLY,
    SAMPLE_RATE,
    InstantTTS,
    announce,
    announce_key,
    speech_samples,
)
from workers.tts import split_sentences

from .conftest import Call, wait_until_disconnected
from .instant_stack import InstantStack
from .test_e2e import AUDIO, api_turns, final_transcripts, of_type, say, talk

pytestmark = pytest.mark.e2e

QUESTION_WAV = Path(__file__).resolve().parents[1] / "data" / "question_16k.wav"
# What the caller says it will say; the instant STT hears exactly this.
ANNOUNCED = "What time do you open tomorrow?"
# PostgreSQL's statistics of another backend can trail its work by a moment.
STATS_SETTLE_S = 1.5


@pytest.fixture
def client(instant_stack: InstantStack) -> Iterator[redis.Redis]:
    """A client of the stack's Redis, where the instant STT looks for announcements."""
    with redis.Redis.from_url(instant_stack.redis_url) as client:
        yield client


def test_announced_utterance_is_transcribed_answered_and_spoken(
    instant_stack: InstantStack, client: redis.Redis, make_call: Callable[..., Call]
) -> None:
    call = make_call()
    announce(client, call.session_id, ANNOUNCED)
    speech, _ = read_wav(QUESTION_WAV)  # 16 kHz
    sequence, received, audio = say(instant_stack.server, call, speech)
    with override_settings(REDIS_URL=instant_stack.redis_url):
        wait_until_disconnected([call.session_id])

    first = sequence.index
    # The words were shown while the caller paused, before the utterance ended.
    assert first("speech.started") < first("transcript.interim") < first("speech.stopped")
    assert first("speech.stopped") < first("transcript") < first("intent")
    assert first("intent") < first("response.delta")
    assert first("audio.start") < first(AUDIO)
    assert AUDIO not in sequence[first("audio.end") :]
    assert first("audio.end") < first("response.done") < first("metrics") == len(sequence) - 1

    (interim,) = [e for e in of_type(received, "transcript") if not e["final"]]
    assert interim["text"] == final_transcripts(received)[0]["text"] == ANNOUNCED
    assert not client.exists(announce_key(call.session_id))  # heard exactly once
    assert of_type(received, "intent")[0]["intent"] == "question"
    deltas = of_type(received, "response.delta")
    assert len(deltas) > 1
    done = of_type(received, "response.done")[0]
    assert "".join(d["text"] for d in deltas).strip() == done["text"] == REPLY
    assert done["interrupted"] is False

    assert of_type(received, "audio.start")[0]["sample_rate"] == SAMPLE_RATE
    sentences = split_sentences(REPLY)
    assert len(sentences) == 3
    assert len(audio) == sum(speech_samples(s) for s in sentences) * SAMPLE_WIDTH
    # The instant voice's tone for each sentence, in order, nothing lost or added.
    assert audio == b"".join(b"".join(InstantTTS().stream(s, "")) for s in sentences)
    metrics = of_type(received, "metrics")[0]
    for name in ("stt_ms", "classify_ms", "first_token_ms", "first_audio_ms", "total_ms"):
        assert metrics[name] is not None, name

    turns = api_turns(instant_stack.server, call)
    assert [(t["speaker"], t["text"]) for t in turns] == [("user", ANNOUNCED), ("agent", REPLY)]


def test_a_caller_who_trails_off_is_waited_for(
    instant_stack: InstantStack, client: redis.Redis, make_call: Callable[..., Call]
) -> None:
    """Words that trail off make the endpointer wait VOICE_VAD_TRAILING_OFF_MS
    (1000 ms), so a pause of 800 ms, which the usual 600 ms would have ended
    the turn in, is still one utterance. The instant STT hears one announced
    text per decode: each pause's early transcript takes one."""
    call = make_call()
    announce(client, call.session_id, "I'd like to book a table for")
    announce(client, call.session_id, "two people tonight.")
    speech, rate = read_wav(QUESTION_WAV)
    pause = bytes(rate * SAMPLE_WIDTH * 8 // 10)
    sequence, received, _ = say(instant_stack.server, call, speech + pause + speech)
    assert sequence.count("speech.started") == sequence.count("transcript") == 1
    assert "interrupted" not in sequence
    interim = [e["text"] for e in of_type(received, "transcript") if not e["final"]]
    assert interim == ["I'd like to book a table for", "two people tonight."]
    assert of_type(received, "response.done")[0]["text"] == REPLY


def sessions_opened() -> int:
    """How many connections PostgreSQL has accepted to the test database so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts PostgreSQL's sessions")
def test_workers_keep_their_database_connections_from_turn_to_turn(
    instant_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    """Every typed turn saves and reads turns on the respond worker; a pool
    process that kept its connection opens no new one for the next turn.

    Celery's Django fixup used to close every connection before and after each
    task, so each turn cost PostgreSQL a new session (a server process).
    Daphne's database threads may still open theirs (VOICE_DB_THREADS, 4) the
    first time each is used; nothing else does.
    """
    call = make_call()
    turns = 8
    talk(instant_stack, call, "What time do you open tomorrow?")  # every process connected
    # A backend reports its session once its first transaction is over.
    time.sleep(STATS_SETTLE_S)
    before = sessions_opened()
    answered = talk(
        instant_stack, call, *(f"Question {n}: when do you open?" for n in range(turns))
    )
    time.sleep(STATS_SETTLE_S)
    opened = sessions_opened() - before

    assert all(of_type(events, "response.done") for events in answered)
    assert opened < turns, f"{opened} new database sessions for {turns} turns"
