"""The dialog policy of one turn as a LangGraph ``StateGraph``.

::

    START → speculate → classify ─┬─ intent is "farewell" → farewell → END
                                  ├─ classifier failed    → fallback → END
                                  └─ any other intent     → respond ─┬→ END
                                                                     └─ responder failed
                                                                        before a word → fallback

``speculate`` starts the responder before the intent is known, so the reply
is being generated while the classifier runs; ``respond`` keeps that draft,
``farewell`` and ``fallback`` cancel it. The graph does no I/O itself: every
model call and every message to the caller goes through a :class:`DialogNodes`
implementation (``workers.respond`` wires the real one: classifier on the
classify queue, responder on this respond worker, speech on the tts queue), so
tests drive the real graph with plain functions.
"""

import time
from dataclasses import dataclass
from typing import Protocol, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from voiceproj.pipeline import FALLBACK_LINE, FAREWELL_LINE
from workers.engines.base import EngineError

FAREWELL_INTENT = "farewell"


@dataclass(frozen=True)
class Spoken:
    """What a node said: the text, how many sentences went to speech, and
    whether it ends the call (a tool such as ``end_call`` decided so)."""

    text: str
    sentences: int
    end_call: bool = False


class DialogNodes(Protocol):
    """The side effects the graph needs; each raises EngineError on a provider failure."""

    def start_reply(self, text: str) -> None:
        """Start generating the reply to ``text`` without saying anything yet."""

    def classify(self, text: str) -> str:
        """The caller's intent, one of the agent's intent names."""

    def announce_intent(self, intent: str) -> None:
        """Tell the caller's client the intent (the ``intent`` event)."""

    def keep_reply(self) -> Spoken:
        """Say the speculative reply: what was buffered, then the rest as it comes."""

    def cancel_reply(self) -> None:
        """Drop the speculative reply; nothing of it is said."""

    def say(self, text: str) -> Spoken:
        """Say a fixed line."""


class DialogState(TypedDict, total=False):
    text: str  # what the caller said
    intent: str | None
    classify_ms: int | None
    error: str | None  # EngineError code of the failed stage
    reply: str  # what the agent said
    sentences: int
    end_call: bool


def build_dialog_graph(nodes: DialogNodes) -> CompiledStateGraph:
    """Compile the dialog graph over ``nodes``."""

    def speculate(state: DialogState) -> DialogState:
        nodes.start_reply(state["text"])
        return {}

    def classify(state: DialogState) -> DialogState:
        started = time.monotonic()
        try:
            intent = nodes.classify(state["text"])
        except EngineError as exc:
            return {"intent": None, "error": exc.code, "classify_ms": _ms_since(started)}
        classify_ms = _ms_since(started)
        nodes.announce_intent(intent)
        return {"intent": intent, "classify_ms": classify_ms}

    def route(state: DialogState) -> str:
        if state.get("error"):
            return "fallback"
        if state.get("intent") == FAREWELL_INTENT:
            return "farewell"
        return "respond"

    def respond(state: DialogState) -> DialogState:
        try:
            spoken = nodes.keep_reply()
        except EngineError as exc:
            return {"error": exc.code, "reply": "", "sentences": 0}
        return {"reply": spoken.text, "sentences": spoken.sentences, "end_call": spoken.end_call}

    def after_respond(state: DialogState) -> str:
        return "fallback" if state.get("error") and not state.get("reply") else END

    def farewell(state: DialogState) -> DialogState:
        nodes.cancel_reply()
        spoken = nodes.say(FAREWELL_LINE)
        return {"reply": spoken.text, "sentences": spoken.sentences, "end_call": True}

    def fallback(state: DialogState) -> DialogState:
        nodes.cancel_reply()
        spoken = nodes.say(FALLBACK_LINE)
        return {"reply": spoken.text, "sentences": spoken.sentences, "end_call": False}

    graph = StateGraph(DialogState)
    graph.add_node("speculate", speculate)
    graph.add_node("classify", classify)
    graph.add_node("respond", respond)
    graph.add_node("farewell", farewell)
    graph.add_node("fallback", fallback)
    graph.add_edge(START, "speculate")
    graph.add_edge("speculate", "classify")
    graph.add_conditional_edges("classify", route, ["respond", "farewell", "fallback"])
    graph.add_conditional_edges("respond", after_respond, ["fallback", END])
    graph.add_edge("farewell", END)
    graph.add_edge("fallback", END)
    return graph.compile()


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
