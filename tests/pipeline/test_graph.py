"""The dialog graph on its own: real LangGraph, side effects recorded by a script.

The nodes here stand in for the pipeline's I/O (Celery queues, channel layer)
only; the routing, the speculative start and the cancel/keep decisions under
test are the graph's own.
"""

from dataclasses import dataclass, field

import pytest

from agents.knowledge import Passage
from voiceproj.pipeline import NO_KNOWLEDGE_LINE, TRANSFER_LINE
from workers.engines.base import EngineError
from workers.graph import FALLBACK_LINE, FAREWELL_LINE, Spoken, run_dialog

HOURS = Passage(
    entry_id=7,
    title="Opening hours",
    text="Parking is free for guests. We open at nine on weekdays. Sundays we are closed.",
    score=2.5,
)


@dataclass
class ScriptedNodes:
    intent: str = "question"
    classify_error: bool = False
    reply_error: bool = False
    tool_error: bool = False
    passages: list[Passage] = field(default_factory=list)
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

    def search_knowledge(self, text: str) -> list[Passage]:
        self.log.append(f"search:{text}")
        return self.passages

    def run_tool(self, tool: str, text: str) -> Spoken:
        self.log.append(f"tool:{tool}")
        if self.tool_error:
            raise EngineError("respond", "tools", "unavailable", "no such tool")
        return Spoken("Your table is booked.", 1)

    def hand_off(self, to: str) -> None:
        self.log.append(f"handoff:{to}")


def run(nodes: ScriptedNodes, routes: dict | None = None) -> dict:
    return dict(run_dialog(nodes, routes, "When do you open?"))


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


# --- routes -------------------------------------------------------------------------


def test_an_answer_route_keeps_the_speculative_reply() -> None:
    nodes = ScriptedNodes(intent="question")
    state = run(nodes, {"question": {"action": "answer"}})
    assert nodes.log[-1] == "keep_reply" and "cancel_reply" not in nodes.log
    assert state["reply"] == "We open at nine. See you then."
    assert state["end_call"] is False


def test_a_say_route_cancels_the_draft_and_says_its_text() -> None:
    nodes = ScriptedNodes(intent="question")
    state = run(nodes, {"question": {"action": "say", "text": "Please check our website."}})
    assert nodes.log[-2:] == ["cancel_reply", "say:Please check our website."]
    assert "keep_reply" not in nodes.log
    assert (state["reply"], state["end_call"]) == ("Please check our website.", False)


def test_a_knowledge_route_says_the_matching_sentences_of_the_best_passage() -> None:
    nodes = ScriptedNodes(intent="question", passages=[HOURS])
    state = run(nodes, {"question": {"action": "knowledge"}})
    assert nodes.log[-3:-1] == ["cancel_reply", "search:When do you open?"]
    assert "keep_reply" not in nodes.log
    # The sentences that match the question, in the passage's order, not the model's words.
    assert "We open at nine on weekdays." in state["reply"]
    assert "Parking" not in state["reply"]
    assert state["sources"] == [7]


def test_a_knowledge_route_without_a_match_says_it_does_not_know() -> None:
    nodes = ScriptedNodes(intent="question", passages=[])
    state = run(nodes, {"question": {"action": "knowledge"}})
    assert nodes.log[-1] == f"say:{NO_KNOWLEDGE_LINE}"
    assert state["sources"] == []
    assert state["end_call"] is False


def test_an_end_route_says_its_text_and_ends_the_call() -> None:
    nodes = ScriptedNodes(intent="command")
    state = run(nodes, {"command": {"action": "end", "text": "Alright, goodbye."}})
    assert nodes.log[-2:] == ["cancel_reply", "say:Alright, goodbye."]
    assert (state["end_call"], state["end_reason"]) == (True, "farewell")


def test_an_end_route_without_text_says_the_farewell_line() -> None:
    state = run(ScriptedNodes(intent="command"), {"command": {"action": "end"}})
    assert (state["reply"], state["end_call"]) == (FAREWELL_LINE, True)


def test_a_farewell_routed_to_answer_no_longer_ends_the_call() -> None:
    nodes = ScriptedNodes(intent="farewell")
    state = run(nodes, {"farewell": {"action": "answer"}})
    assert nodes.log[-1] == "keep_reply"
    assert state["end_call"] is False


def test_routes_for_other_intents_keep_the_farewell_default() -> None:
    state = run(ScriptedNodes(intent="farewell"), {"question": {"action": "knowledge"}})
    assert (state["reply"], state["end_call"]) == (FAREWELL_LINE, True)


def test_a_transfer_route_says_so_hands_off_and_ends_the_call() -> None:
    nodes = ScriptedNodes(intent="command")
    state = run(nodes, {"command": {"action": "transfer", "to": "+14155550199"}})
    assert nodes.log[-3:] == ["cancel_reply", f"say:{TRANSFER_LINE}", "handoff:+14155550199"]
    assert (state["end_call"], state["end_reason"]) == (True, "transferred")


def test_a_tool_route_cancels_the_draft_and_runs_the_named_tool() -> None:
    nodes = ScriptedNodes(intent="command")
    state = run(nodes, {"command": {"action": "tool", "tool": "book_table"}})
    assert nodes.log[-2:] == ["cancel_reply", "tool:book_table"]
    assert state["reply"] == "Your table is booked."


def test_a_failing_tool_gives_the_fallback_line() -> None:
    nodes = ScriptedNodes(intent="command", tool_error=True)
    state = run(nodes, {"command": {"action": "tool", "tool": "book_table"}})
    assert nodes.log[-1] == f"say:{FALLBACK_LINE}"
    assert (state["error"], state["reply"]) == ("unavailable", FALLBACK_LINE)
