"""The respond queue: the agent's reply to one caller turn, via the dialog graph.

Consumes ``workers.respond.reply(job, text=..., classify_sent=True)`` (from
the STT worker, which sent the classify task beside it, or in-process from
``workers.dialog.run_text_turn``). Runs the dialog graph (``workers.graph``):
the reply is generated speculatively on this worker while the classify queue
labels the intent. Produces on the consumer's channel the
``intent`` event, ``response.delta`` events, a worker ``metrics`` event and
``pipeline.reply_done``; every complete sentence goes to the tts queue
(``workers.tts.synthesize``) as soon as it is complete, numbered from 0. The
agent turn (text, intent, classify_ms, first_token_ms, tool_calls) is saved
before ``reply_done`` is sent, so a hang-up after that loses nothing.

When the agent has tools, the responder may call one instead of answering
(function calling): the call is chosen speculatively with the reply, but only
made once the route keeps the reply (a farewell or fallback never calls a
tool), through ``workers.tools.runner``; ``tool.call`` / ``tool.result``
events tell the client, and the result is spoken as the reply.
"""

import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from agents import knowledge
from calls.protocol import handoff_event, tool_call_event, tool_result_event
from calls.turns import history, record_turn
from voiceproj.pipeline import (
    REPLY_TASK,
    TRANSFERRED,
    AgentConfig,
    Job,
    event_message,
    reply_done_message,
)
from workers import relay
from workers.classify import start_classify, wait_for_intent
from workers.engines import get_llm
from workers.engines.base import EngineError, ToolCall
from workers.engines.prompts import knowledge_prompt
from workers.graph import Spoken, run_dialog
from workers.tools.runner import run_tool_call
from workers.tts import synthesize
from workers.turnstate import is_current
from workers.turntask import TurnTask

logger = logging.getLogger(__name__)

# About three spoken sentences; a voice reply longer than that loses the caller.
MAX_REPLY_TOKENS = 120
SPEAKABLE_INSTRUCTIONS = (
    "You are speaking with a caller on the phone. Answer in one to three short, "
    "plain sentences that sound natural when read aloud. Never use markdown, "
    "lists, headings, emojis or URLs."
)
# The caller's text display lags the model by at most this much (see TurnReply._out).
DELTA_INTERVAL_S = 0.05
# Between tokens the turn is asked of Redis at most this often (a round trip
# per token was 40 per reply); before any text or sentence leaves, always. A
# barged-in reply stops generating within this long of its next token.
STALE_CHECK_S = 0.05
# The speculative reply's thread runs this much nicer than the worker: on a
# busy box the caller waits for the intent, while early tokens are only a head
# start (bench/quality.py measures the classifier with and without it).
RESPONDER_NICENESS = 10
# A sentence without a full stop is still sent to speech once this long, at a
# word boundary, so a run-on reply does not delay the first audio.
MAX_SENTENCE_CHARS = 240
# The reply's first piece goes to speech at its first clause break (a comma,
# semicolon, colon or dash) once this many words precede it: the caller hears
# the reply while the rest of the first sentence is still being synthesized.
# Four words (about a second of speech) keep a lone "Well," or "Sure, thanks,"
# from being spoken as a choppy piece of its own.
FIRST_CLAUSE_MIN_WORDS = 4

_MARKUP = re.compile(r"[*_#`~|>]+")
_LIST_MARKER = re.compile(r"(^|\n)\s*(?:[-+•]|\d+[.)])\s+")
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s")
_CLAUSE_BREAK = re.compile(r"[,;:][\"')\]]*\s|\s[-–—]\s")


def instructions(agent: AgentConfig) -> str:
    """The responder's system prompt: the agent's own, then how to speak."""
    return f"{agent.get('system_prompt', '').strip()}\n\n{SPEAKABLE_INSTRUCTIONS}".strip()


def yield_cpu(niceness: int = RESPONDER_NICENESS) -> None:
    """Lower the calling thread's CPU priority by ``niceness`` (Linux nice is per thread).

    llama.cpp computes on the calling thread with one thread (LLM_THREADS on a
    small box); helper threads it starts inherit the lowered priority.
    """
    tid = threading.get_native_id()
    try:
        os.setpriority(
            os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
        )
    except OSError:  # a sandbox that forbids it: generate at the usual priority
        logger.warning("could not lower the responder thread's priority", exc_info=True)


def speakable(raw: str) -> str:
    """``raw`` model output as plain speech: no markdown marks, list markers or line breaks."""
    text = _LIST_MARKER.sub(r"\1", raw)
    text = _MARKUP.sub("", text)
    return _SPACES.sub(" ", text).lstrip()


def _first_clause_end(text: str) -> int | None:
    """Where ``text``'s first clause ends, once it is long enough to be spoken alone."""
    for mark in _CLAUSE_BREAK.finditer(text):
        if len(text[: mark.start()].split()) >= FIRST_CLAUSE_MIN_WORDS:
            return mark.end()
    return None


@dataclass
class SentenceStream:
    """Turns streamed model text into speakable deltas and pieces of speech.

    Text is released only up to the last whitespace seen, so a markdown mark or
    list marker split across tokens is removed before it is ever shown. The
    pieces are complete sentences, except the reply's first, which ends at its
    first clause break (:data:`FIRST_CLAUSE_MIN_WORDS`).
    """

    raw: str = ""
    shown: int = 0  # characters of speakable(raw) already released as deltas
    sentence_start: int = 0  # where the current, unfinished sentence begins

    def feed(self, delta: str) -> tuple[str, list[str]]:
        self.raw += delta
        clean = speakable(self.raw)
        cut = max(clean.rfind(" "), clean.rfind("\n")) + 1
        return self._release(clean, cut if cut > self.shown else self.shown, final=False)

    def close(self) -> tuple[str, list[str]]:
        clean = speakable(self.raw).rstrip()
        return self._release(clean, len(clean), final=True)

    @property
    def text(self) -> str:
        return speakable(self.raw).strip()

    def _release(self, clean: str, upto: int, final: bool) -> tuple[str, list[str]]:
        delta = clean[self.shown : upto]
        self.shown = max(self.shown, upto)
        sentences = []
        released = clean[: self.shown]
        while True:
            rest = released[self.sentence_start :]
            end = _SENTENCE_END.search(rest)
            clause_end = _first_clause_end(rest) if self.sentence_start == 0 else None
            if clause_end is not None and (end is None or clause_end < end.end()):
                end_at = clause_end
            elif end is None and len(rest) > MAX_SENTENCE_CHARS:
                cut = rest.rfind(" ", 0, MAX_SENTENCE_CHARS)
                end_at = cut if cut > 0 else MAX_SENTENCE_CHARS
            elif end is not None:
                end_at = end.end()
            else:
                break
            sentences.append(rest[:end_at].strip())
            self.sentence_start += end_at
        if final and released[self.sentence_start :].strip():
            sentences.append(released[self.sentence_start :].strip())
            self.sentence_start = len(released)
        return delta, [s for s in sentences if s]


@dataclass
class TurnReply:
    """The :class:`workers.graph.DialogNodes` of one turn, wired to the real pipeline."""

    job: Job
    text: str
    # The classify task was sent with the reply task (workers.classify.start_classify);
    # otherwise the classify node sends it.
    classify_sent: bool = False
    stale: bool = False
    first_token_at: float | None = None  # epoch seconds
    sentences: int = 0
    tool_calls: list[dict] = field(default_factory=list)  # audit entries, in order
    end_reason: str = ""  # a tool ended the call (end_call, transfer_call), and why
    # The knowledge passages put into the speculative reply's prompt.
    passages: list[knowledge.Passage] = field(default_factory=list)
    # Searches made this turn, by text: the speculative prompt, a knowledge
    # route and a tool route all search the caller's words.
    _found: dict[str, list[knowledge.Passage]] = field(default_factory=dict)
    _tokens: queue.Queue = field(default_factory=queue.Queue)
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _unsent_text: str = ""  # released text not yet sent as a response.delta
    _delta_sent_at: float = 0.0  # monotonic
    _checked_at: float = float("-inf")  # monotonic: the turn was last found current

    # --- DialogNodes ------------------------------------------------------------

    def start_reply(self, text: str) -> None:
        agent = self.job["agent"]
        threading.Thread(
            target=self._generate,
            args=(
                self.prompt(text),
                agent.get("tools") or [],
                agent["responder_model"],
                agent["responder_temperature"],
            ),
            name="responder",
            daemon=True,
        ).start()

    def classify(self, text: str) -> str:
        if not self.classify_sent:
            start_classify(self.job, text)
        return wait_for_intent(self.job)

    def announce_intent(self, intent: str) -> None:
        self.send_event({"type": "intent", "intent": intent})

    def keep_reply(self) -> Spoken:
        stream = SentenceStream()
        while True:
            try:
                kind, value = self._tokens.get(timeout=settings.ENGINE_TIMEOUT_S)
            except queue.Empty:
                kind, value = "error", EngineError("respond", "llm", "timeout", "No token in time.")
            if not self._current(STALE_CHECK_S):
                self.cancel_reply()
                break
            if kind == "error":
                if stream.text:
                    self._out("", [], final=True)
                    break  # keep what was said; the reply just ends early
                raise value
            if kind == "tool":
                self._call_tool(stream, value)
                break
            if kind == "end":
                self._out(*stream.close(), final=True)
                break
            self._out(*stream.feed(value))
        sources = tuple(dict.fromkeys(p.entry_id for p in self.passages))
        return Spoken(stream.text, self.sentences, sources, self.end_reason)

    def cancel_reply(self) -> None:
        self._cancelled.set()

    def say(self, text: str) -> Spoken:
        stream = SentenceStream()
        self._out(*stream.feed(text))
        self._out(*stream.close(), final=True)
        return Spoken(stream.text, self.sentences)

    def search_knowledge(self, text: str) -> list[knowledge.Passage]:
        if text not in self._found:
            try:
                self._found[text] = knowledge.search(self.job["agent"]["id"], text)
            except DatabaseError as exc:
                raise EngineError("respond", "knowledge", "unavailable", str(exc)) from exc
        return self._found[text]

    def run_tool(self, tool: str, text: str) -> Spoken:
        """A ``tool`` route: the model offered only ``tool`` fills in its arguments
        from ``text``; the call runs as a model-chosen one does (_call_tool).

        A model that answers in words instead leaves the arguments empty: the
        runner's schema check then decides, and the caller hears why.
        """
        agent = self.job["agent"]
        spec = next((t for t in agent.get("tools") or [] if t["name"] == tool), None)
        if spec is None:
            raise EngineError("respond", "tools", "unknown_tool", f"The agent has no {tool!r}.")
        offered: list = [spec]  # the job's specs, as _generate offers them all
        items = get_llm().stream_or_call(
            self.prompt(text),
            offered,
            agent["responder_model"],
            agent["responder_temperature"],
            MAX_REPLY_TOKENS,
        )
        call = next((item for item in items if isinstance(item, ToolCall)), ToolCall(tool, {}))
        stream = SentenceStream()
        self._call_tool(stream, call)
        return Spoken(stream.text, self.sentences, (), self.end_reason)

    def hand_off(self, to: str) -> None:
        self.send_event(handoff_event(to))

    # --- helpers ----------------------------------------------------------------

    def prompt(self, text: str) -> list[dict[str, str]]:
        """The responder's messages: instructions with the knowledge that matches
        ``text``, the call so far, and ``text``."""
        system = instructions(self.job["agent"])
        try:
            self.passages = self.search_knowledge(text)
        except EngineError as exc:  # the reply goes on without knowledge
            logger.warning("knowledge not searched: %s", exc.message)
        if self.passages:
            system += "\n\n" + knowledge_prompt([p.text for p in self.passages])
        # Read here, not by the call: the web process then does no database
        # read per turn, and every earlier turn is saved by now (the call
        # saves a reply, or what was heard of it, before the next turn starts).
        past = history(self.job["session_id"], self.job["turn_id"], settings.VOICE_HISTORY_TURNS)
        return [{"role": "system", "content": system}, *past, {"role": "user", "content": text}]

    def _call_tool(self, stream: SentenceStream, call: ToolCall) -> None:
        """Make the model's tool call (once, only while the turn is current) and say its result."""
        self._out("", [], final=True)  # what was said before the call shows now
        self.send_event(tool_call_event(call.name, call.arguments))
        outcome = run_tool_call(self.job, len(self.tool_calls), call)
        self.tool_calls.append(outcome.audit())
        if outcome.status == "cancelled":
            self.stale = True  # the turn is over: nothing to say, nobody to tell
            return
        self.send_event(tool_result_event(call.name, outcome.ok))
        if outcome.handoff:
            # As a transfer route does: the call ends, a phone call is transferred.
            self.hand_off(outcome.handoff)
            self.end_reason = TRANSFERRED
        elif outcome.end_call:
            self.end_reason = "farewell"
        self._out(*stream.feed((" " if stream.raw.strip() else "") + outcome.say + " "))
        self._out(*stream.close(), final=True)

    def _generate(
        self, messages: list[dict[str, str]], tools: list, model: str, temperature: float
    ) -> None:
        """Responder thread: put ("delta", text)... then ("end", None), ("tool", call)
        or ("error", exc)."""
        llm = get_llm()
        yield_cpu()
        try:
            items = (
                llm.stream_or_call(messages, tools, model, temperature, MAX_REPLY_TOKENS)
                if tools
                else llm.stream(messages, model, temperature, MAX_REPLY_TOKENS)
            )
            for item in items:
                if self.first_token_at is None:
                    self.first_token_at = time.time()
                if self._cancelled.is_set():
                    return
                if isinstance(item, ToolCall):
                    self._tokens.put(("tool", item))
                    return
                self._tokens.put(("delta", item))
            self._tokens.put(("end", None))
        except EngineError as exc:
            self._tokens.put(("error", exc))
        except Exception as exc:  # a provider bug must still end the turn politely
            self._tokens.put(("error", EngineError("respond", "llm", "failed", str(exc))))

    def _current(self, known_within_s: float = 0.0) -> bool:
        """Whether the turn is still current, asked of Redis unless it was
        within the last ``known_within_s``."""
        now = time.monotonic()
        if not self.stale and now - self._checked_at >= known_within_s:
            self._checked_at = now
            self.stale = not is_current(self.job["session_id"], self.job["turn_id"])
        return not self.stale

    def _out(self, delta: str, sentences: list[str], final: bool = False) -> None:
        """Send released text as a ``response.delta`` and complete sentences to speech.

        Text is sent at most every :data:`DELTA_INTERVAL_S`, and whenever a
        sentence is complete or the reply ends: a token per channel-layer
        message would cost the web process a hundred messages a second per reply.
        """
        self._unsent_text += delta
        due = time.monotonic() - self._delta_sent_at >= DELTA_INTERVAL_S
        if self._unsent_text and (due or sentences or final) and self._current():
            self.send_event({"type": "response.delta", "text": self._unsent_text})
            self._unsent_text, self._delta_sent_at = "", time.monotonic()
        for sentence in sentences:
            if not self._current():
                return
            synthesize.apply_async(
                args=[self.job], kwargs={"sentence": self.sentences, "text": sentence}
            )
            self.sentences += 1

    def send_event(self, event: dict) -> None:
        relay.send(self.job["channel_name"], event_message(self.job, event))


def answer(job: Job, text: str, classify_sent: bool = False) -> None:
    """Run the dialog graph for the caller's ``text`` and close the turn;
    ``classify_sent``: the classify task for ``text`` is on its way already.

    The worker saves what only it knows (intent, classify_ms, first_token_ms);
    the reply's text goes to the call in ``reply_done``, and the call saves
    what the caller actually heard of it (docs/pipeline.md, "Persistence").
    """
    nodes = TurnReply(job, text, classify_sent)
    state = run_dialog(nodes, job["agent"].get("routes"), text)
    if nodes.stale:
        if nodes.tool_calls:  # the audit keeps what was (not) called
            record_turn(job["session_id"], job["turn_id"], "agent", tool_calls=nodes.tool_calls)
        return  # the call saves what was actually spoken of a barged-in turn
    first_token_ms = (
        round((nodes.first_token_at - job["t0"]) * 1000) if nodes.first_token_at else None
    )
    record_turn(
        job["session_id"],
        job["turn_id"],
        "agent",
        intent=state.get("intent") or "",
        classify_ms=state.get("classify_ms"),
        first_token_ms=first_token_ms,
        tool_calls=nodes.tool_calls,
        sources=state.get("sources") or [],
    )
    if state.get("error"):
        # The caller heard the fallback line; the client also learns why.
        nodes.send_event(
            {
                "type": "error",
                "code": "pipeline_error",
                "message": f"The assistant could not answer ({state['error']}).",
            }
        )
    nodes.send_event(
        {
            "type": "metrics",
            "classify_ms": state.get("classify_ms"),
            "first_token_ms": first_token_ms,
        }
    )
    relay.send(
        job["channel_name"],
        reply_done_message(
            job,
            state.get("reply", ""),
            nodes.sentences,
            bool(state.get("end_call")),
            state.get("end_reason") or "farewell",
        ),
    )


@shared_task(name=REPLY_TASK, base=TurnTask, soft_time_limit=90, time_limit=100)
def reply(job: Job, text: str, classify_sent: bool = False) -> None:
    """Answer the caller's transcribed ``text``. A job without ``classify_sent``
    (sent by a worker older than start_classify) has the classify task sent here."""
    answer(job, text, classify_sent)
