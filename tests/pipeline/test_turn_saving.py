"""calls.turns.record_turn's ``while_locked``: the STT worker starts the reply
before its user turn is written (workers.stt.transcribe), and the turns still
keep the order they were spoken in. The real database (PostgreSQL in CI: the
session's row lock; SQLite's IMMEDIATE transactions lock the whole file) and
threads with connections of their own, as the workers and the call have."""

import threading

import pytest
from django.db import connection

from calls.models import Turn
from calls.turns import deliver_agent_turn, record_turn


def _in_thread(target) -> threading.Thread:
    """``target`` on its own database connection, as another process would save."""

    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_an_agent_turn_saved_meanwhile_waits_for_the_user_turn(make_call):
    call = make_call()
    session_id = str(call.session.id)
    agent_saved = threading.Event()
    started: list[threading.Thread] = []

    def start_reply() -> None:
        # What the reply does once it is done: the call saves the agent's turn.
        def save_reply() -> None:
            deliver_agent_turn(session_id, 1, "Paris.", first_audio_ms=300, total_ms=900)
            agent_saved.set()

        started.append(_in_thread(save_reply))
        # The reply is faster than the save here: it is already waiting.
        assert not agent_saved.wait(0.5), "the agent's turn was saved before the user's"

    record_turn(
        session_id, 1, "user", text="What is the capital of France?", while_locked=start_reply
    )
    started[0].join(10)
    assert agent_saved.is_set()
    turns = list(Turn.objects.filter(session=call.session).order_by("index"))
    assert [(t.index, t.speaker, t.text) for t in turns] == [
        (0, "user", "What is the capital of France?"),
        (1, "agent", "Paris."),
    ]
    call.session.refresh_from_db()
    assert call.session.turn_count == 2


def test_the_user_turn_is_saved_when_its_reply_cannot_be_started(make_call):
    call = make_call()
    session_id = str(call.session.id)

    def broker_down() -> None:
        raise ConnectionError("Redis is gone")

    with pytest.raises(ConnectionError, match="Redis is gone"):
        record_turn(session_id, 1, "user", text="Hello?", stt_ms=40, while_locked=broker_down)
    saved = Turn.objects.get(session=call.session, turn_id=1, speaker="user")
    assert (saved.text, saved.stt_ms, saved.index) == ("Hello?", 40, 0)
