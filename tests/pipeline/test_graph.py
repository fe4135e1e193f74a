"""The dialog graph on its own: real LangGraph, side effects recorded by a script.

The nodes here stand in for the pipeline's I/O (Celery queues, channel layer)
only; the routing, the speculative start and the cancel/keep decisions under
test are the graph's own.
"""

from dataclasses import dataclass, field

import pytest

from workers.engines.base import EngineError
from workers.graph import FALLBACK_LINE, FAREWELL_LINE, Spoken, build_dialog_graph


@dataclass
class ScriptedNodes:
    intent: str = "question"
    classify_error: bool = False
    reply_error: bool = False
    log: list[str] = field(default_factory=list)

    def start_reply(self, text: str) -> None:
        self.log.append(f"start_reply:{text}")

    def classify(self, text: str) -> str:
        self.log.append("classify")
        if self.classify_error:
            raise EngineError("classify", "test", "unreachable", "down")
        return self.intent

    def announce_intent(self, intent: str) -> None:
        self.log.append(f"intent:{intent}")

    def keep_reply(self) -> Spoken:
        self.log.append("keep_reply")
        if self.reply_error:
            raise EngineError("respond", "test", "timeout", "slow")
        return Spoken("We open at nine. See you then.", 2)

    def cancel_reply(self) -> None:
        self.log.append("cancel_reply")

    def say(self, text: str) -> Spoken:
        self.log.append(f"say:{text}")
        return Spoken(text, 1)


def run(nodes: ScriptedNodes) -> dict:
    return build_dialog_graph(nodes).invoke({"text": "When do you open?"})


def test_reply_starts_before_the_classifier_and_is_kept_for_a_question() -> None:
    nodes = ScriptedNodes(intent="question")
    state = run(nodes)
    assert nodes.log == [
        "start_reply:When do you open?",
        "classify",
        "intent:question",
        "keep_reply",
    ]
    assert state["reply"] == "We open at nine. See you then."
    assert state["sentences"] == 2
    assert state["intent"] == "question"
    assert isinstance(state["classify_ms"], int)
    assert state["end_call"] is False


def test_farewell_cancels_the_draft_says_goodbye_and_ends_the_call() -> None:
    nodes = ScriptedNodes(intent="farewell")
    state = run(nodes)
    assert nodes.log[-2:] == ["cancel_reply", f"say:{FAREWELL_LINE}"]
    assert "keep_reply" not in nodes.log
    assert state["end_call"] is True
    assert state["reply"] == FAREWELL_LINE


def test_classifier_failure_gives_the_polite_fallback_without_the_draft() -> None:
    nodes = ScriptedNodes(classify_error=True)
    state = run(nodes)
    assert not any(entry.startswith("intent:") for entry in nodes.log)
    assert nodes.log[-2:] == ["cancel_reply", f"say:{FALLBACK_LINE}"]
    assert state["error"] == "unreachable"
    assert state["reply"] == FALLBACK_LINE
    assert state["end_call"] is False


def test_responder_failure_before_any_word_falls_back() -> None:
    nodes = ScriptedNodes(reply_error=True)
    state = run(nodes)
    assert nodes.log[-3:] == ["keep_reply", "cancel_reply", f"say:{FALLBACK_LINE}"]
    assert state["reply"] == FALLBACK_LINE
    assert state["error"] == "timeout"


@pytest.mark.parametrize("intent", ["greeting", "command", "clarification", "other"])
def test_every_other_intent_keeps_the_speculative_reply(intent: str) -> None:
    nodes = ScriptedNodes(intent=intent)
    state = run(nodes)
    assert "cancel_reply" not in nodes.log
    assert state["reply"] == "We open at nine. See you then."
