"""The responder hears the call so far: the respond worker reads it from the saved turns."""

import time

import pytest
from django.test import override_settings

from calls.services import start_session
from calls.turns import deliver_agent_turn, record_turn
from voiceproj.pipeline import Job
from workers.respond import TurnReply


def job_for(session, turn_id: int) -> Job:
    return {
        "session_id": str(session.pk),
        "channel_name": "unused",
        "turn_id": turn_id,
        "agent": session.agent.pipeline_config(),
        "t0": time.time(),
    }


@pytest.mark.django_db
def test_the_prompt_holds_earlier_turns_but_not_the_one_being_answered(agent, user) -> None:
    session = start_session(agent, user)
    deliver_agent_turn(str(session.pk), 0, "Hi!")
    record_turn(str(session.pk), 1, "user", text="My name is Ada.")
    deliver_agent_turn(str(session.pk), 1, "Nice to meet you, Ada.")
    record_turn(str(session.pk), 2, "user", text="")  # an utterance with no words
    record_turn(str(session.pk), 3, "user", text="What is my name?")  # saved by the STT worker

    messages = TurnReply(job_for(session, 3), "What is my name?").prompt("What is my name?")

    assert messages[0]["role"] == "system"
    assert messages[1:] == [
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]


@pytest.mark.django_db
@override_settings(VOICE_HISTORY_TURNS=2)
def test_the_prompt_keeps_only_the_latest_turns(agent, user) -> None:
    session = start_session(agent, user)
    for turn in range(1, 4):
        record_turn(str(session.pk), turn, "user", text=f"question {turn}")
        deliver_agent_turn(str(session.pk), turn, f"answer {turn}")

    messages = TurnReply(job_for(session, 4), "question 4").prompt("question 4")

    assert [m["content"] for m in messages[1:]] == ["question 3", "answer 3", "question 4"]
