"""The dialog policy of one turn as a LangGraph ``StateGraph``.

::

    START → speculate → classify ─┬─ classifier failed → fallback → END
                                  └─ the intent's route (agents/routes.py):
                                     answer    → respond ─┬→ END
                                                          └─ failed before a word → fallback
                                     say       → say → END
                                     knowledge → knowledge ─┬→ END
                                     tool      → tool ──────┤
                                                            └─ failed → fallback
                                     transfer  → transfer → END (the call ends, handed over)
                                     end       → end → END (the call ends)

An intent without a route is answered, except ``farewell``, which ends the
call. ``speculate`` starts the responder before the intent is known, so the
reply is being generated while the classifier runs; only ``respond`` keeps
that draft, every other node cancels it. The graph does no I/O itself: every
model call, knowledge search and message to the caller goes through a
:class:`DialogNodes` implementation (``workers.respond`` wires the real one:
classifier on the classify queue, responder on this respond worker, speech on
the tts queue), so tests drive the real graph with plain functions. The graph
is compiled once per agent's routes; each turn's nodes are the run's context.
"""

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, TypedDict, cast

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.knowledge import Passage, best_sentences
from agents.routes import ACTIONS, ANSWER, KNOWLEDGE, SAY, TOOL, TRANSFER, route_for
from agents.routes import END as END_ACTION
from voiceproj.pipeline import (
    FALLBACK_LINE,
    FAREWELL_LINE,
    NO_KNOWLEDGE_LINE,
    TRANSFER_LINE,
    TRANSFERRED,
)
from workers.engines.base import EngineError


@dataclass(frozen=True)
class Spoken:
    """What a node said: the text, how many sentences went to speech, the
    knowledge entries it drew on, and why the call ends after it, if it does
    (a tool such as ``end_call`` may decide so)."""

    text: str
    sentences: int
    sources: tuple[int, ...] = ()
    end_reason: str = ""


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

    def search_knowledge(self, text: str) -> Sequence[Passage]:
        """The agent's knowledge passages that best match ``text``, best first."""

    def run_tool(self, tool: str, text: str) -> Spoken:
        """Run the agent's tool ``tool`` for ``text`` and say its result."""

    def hand_off(self, to: str) -> None:
        """Tell the caller's transport to hand the call over to ``to`` (``handoff``)."""


class DialogState(TypedDict, total=False):
    text: str  # what the caller said
    intent: str | None
    route: dict[str, str]  # the intent's route (agents/routes.py)
    classify_ms: int | None
    error: str | None  # EngineError code of the failed stage
    reply: str  # what the agent said
    sentences: int
    sources: list[int]  # knowledge entries the reply drew on
    end_call: bool
    end_reason: str  # why the call ends, with end_call


def said(spoken: Spoken, end_reason: str | None = None) -> DialogState:
    """The state after a node spoke; with ``end_reason`` (the node's, or one a
    tool decided) the call then ends."""
    end_reason = end_reason or spoken.end_reason
    return {
        "reply": spoken.text,
        "sentences": spoken.sentences,
        "sources": list(spoken.sources),
        "end_call": bool(end_reason),
        "end_reason": end_reason or "",
    }


def failed(exc: EngineError) -> DialogState:
    """The state after a node failed before saying anything (the fallback follows)."""
    return {"error": exc.code, "reply": "", "sentences": 0}


def grounded_answer(text: str, passages: Sequence[Passage]) -> str:
    """What the knowledge route says: the best passage's sentences that match
    the question, or :data:`NO_KNOWLEDGE_LINE` when nothing matched.

    Spoken as written rather than rephrased by the responder: the local
    SmolLM2-135M, given a passage in its prompt, still drifts from it or makes
    up figures (and the instant engine ignores it entirely), while a
    ``knowledge`` route promises the operator that only their own text is
    said. Answers drawing on knowledge freely are what the ``answer`` route
    gives when the agent has knowledge (its passages go into the prompt).
    """
    if not passages:
        return NO_KNOWLEDGE_LINE
    return best_sentences(passages[0].text, text)


@dataclass(frozen=True)
class DialogContext:
    """What one run of the graph acts through: the turn's :class:`DialogNodes`."""

    nodes: DialogNodes


def run_dialog(
    nodes: DialogNodes, routes: dict[str, dict[str, str]] | None, text: str
) -> DialogState:
    """One turn through the dialog graph: the caller said ``text``."""
    graph = dialog_graph(json.dumps(routes or {}, sort_keys=True))
    return cast(DialogState, graph.invoke({"text": text}, context=DialogContext(nodes)))


# Compiling the graph costs about 4.4 ms of CPU against 0.9 ms to run it
# (2-core VM), on the respond worker's path to the first word of every turn;
# the compiled graph is kept per distinct routes (each agent has its own).
@lru_cache(maxsize=256)
def dialog_graph(
    routes_json: str,
) -> CompiledStateGraph[DialogState, DialogContext, DialogState, DialogState]:
    """The dialog graph compiled for the routes in ``routes_json``; the nodes
    come with each run, as its context (:func:`run_dialog`)."""
    routes: dict[str, dict[str, str]] = json.loads(routes_json)
    Run = Runtime[DialogContext]

    def speculate(state: DialogState, runtime: Run) -> DialogState:
        runtime.context.nodes.start_reply(state["text"])
        return {}

    def classify(state: DialogState, runtime: Run) -> DialogState:
        nodes = runtime.context.nodes
        started = time.monotonic()
        try:
            intent = nodes.classify(state["text"])
        except EngineError as exc:
            return {"intent": None, "error": exc.code, "classify_ms": _ms_since(started)}
        classify_ms = _ms_since(started)
        nodes.announce_intent(intent)
        return {"intent": intent, "route": route_for(routes, intent), "classify_ms": classify_ms}

    def route(state: DialogState) -> str:
        return "fallback" if state.get("error") else state["route"]["action"]

    def respond(state: DialogState, runtime: Run) -> DialogState:
        try:
            spoken = runtime.context.nodes.keep_reply()
        except EngineError as exc:
            return failed(exc)
        return said(spoken)

    def after_speaking(state: DialogState) -> str:
        return "fallback" if state.get("error") and not state.get("reply") else END

    def say(state: DialogState, runtime: Run) -> DialogState:
        nodes = runtime.context.nodes
        nodes.cancel_reply()
        return said(nodes.say(state["route"]["text"]))

    def knowledge(state: DialogState, runtime: Run) -> DialogState:
        nodes = runtime.context.nodes
        nodes.cancel_reply()
        try:
            passages = nodes.search_knowledge(state["text"])
        except EngineError as exc:
            return failed(exc)
        spoken = nodes.say(grounded_answer(state["text"], passages))
        # Only the best passage is said, so only its entry is a source.
        sources = tuple(p.entry_id for p in passages[:1])
        return said(Spoken(spoken.text, spoken.sentences, sources))

    def tool(state: DialogState, runtime: Run) -> DialogState:
        nodes = runtime.context.nodes
        nodes.cancel_reply()
        try:
            return said(nodes.run_tool(state["route"]["tool"], state["text"]))
        except EngineError as exc:
            return failed(exc)

    def transfer(state: DialogState, runtime: Run) -> DialogState:
        nodes = runtime.context.nodes
        nodes.cancel_reply()
        spoken = nodes.say(TRANSFER_LINE)
        nodes.hand_off(state["route"]["to"])
        return said(spoken, end_reason=TRANSFERRED)

    def end(state: DialogState, runtime: Run) -> DialogState:
        nodes = runtime.context.nodes
        nodes.cancel_reply()
        return said(nodes.say(state["route"].get("text") or FAREWELL_LINE), "farewell")

    def fallback(state: DialogState, runtime: Run) -> DialogState:
        nodes = runtime.context.nodes
        nodes.cancel_reply()
        return said(nodes.say(FALLBACK_LINE))

    graph = StateGraph(DialogState, context_schema=DialogContext)
    graph.add_node("speculate", speculate)
    graph.add_node("classify", classify)
    actions = {
        ANSWER: respond,
        SAY: say,
        KNOWLEDGE: knowledge,
        TOOL: tool,
        TRANSFER: transfer,
        END_ACTION: end,
    }
    for name, node in actions.items():
        graph.add_node(name, node)
    graph.add_node("fallback", fallback)
    graph.add_edge(START, "speculate")
    graph.add_edge("speculate", "classify")
    graph.add_conditional_edges("classify", route, [*ACTIONS, "fallback"])
    graph.add_conditional_edges(ANSWER, after_speaking, ["fallback", END])
    graph.add_conditional_edges(TOOL, after_speaking, ["fallback", END])
    graph.add_conditional_edges(KNOWLEDGE, after_speaking, ["fallback", END])
    for name in (SAY, TRANSFER, END_ACTION, "fallback"):
        graph.add_edge(name, END)
    return graph.compile()


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
