"""The respond queue: the agent's reply to one caller turn, via the dialog graph.

Consumes ``workers.respond.reply(job, text=...)`` (from the STT worker, or
in-process from ``workers.dialog.run_text_turn``). Runs the dialog graph
(``workers.graph``): the reply is generated speculatively on this worker while
the classify queue labels the intent. Produces on the consumer's channel the
``intent`` event, ``response.delta`` events, a worker ``metrics`` event and
``pipeline.reply_done``; every complete sentence goes to the tts queue
(``workers.tts.synthesize``) as soon as it is complete, numbered from 0. The
agent turn (text, intent, classify_ms, first_token_ms) is saved before
``reply_done`` is sent, so a hang-up after that loses nothing.
"""

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from agents import knowledge
from calls.turns import record_turn
from voiceproj.pipeline import REPLY_TASK, Job, event_message, reply_done_message
from workers import relay
from workers.classify import wait_for_intent
from workers.engines import get_llm
from workers.engines.base import EngineError
from workers.engines.prompts import knowledge_prompt
from workers.graph import Spoken, build_dialog_graph
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
# A sentence without a full stop is still sent to speech once this long, at a
# word boundary, so a run-on reply does not delay the first audio.
MAX_SENTENCE_CHARS = 240

_MARKUP = re.compile(r"[*_#`~|>]+")
_LIST_MARKER = re.compile(r"(^|\n)\s*(?:[-+•]|\d+[.)])\s+")
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s")


def speakable(raw: str) -> str:
    """``raw`` model output as plain speech: no markdown marks, list markers or line breaks."""
    text = _LIST_MARKER.sub(r"\1", raw)
    text = _MARKUP.sub("", text)
    return _SPACES.sub(" ", text).lstrip()


@dataclass
class SentenceStream:
    """Turns streamed model text into speakable deltas and complete sentences.

    Text is released only up to the last whitespace seen, so a markdown mark or
    list marker split across tokens is removed before it is ever shown.
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
            if end is None and len(rest) > MAX_SENTENCE_CHARS:
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
    stale: bool = False
    first_token_at: float | None = None  # epoch seconds
    sentences: int = 0
    # The knowledge passages put into the speculative reply's prompt.
    passages: list[knowledge.Passage] = field(default_factory=list)
    _tokens: queue.Queue = field(default_factory=queue.Queue)
    _cancelled: threading.Event = field(default_factory=threading.Event)

    # --- DialogNodes ------------------------------------------------------------

    def start_reply(self, text: str) -> None:
        agent = self.job["agent"]
        system = f"{agent.get('system_prompt', '').strip()}\n\n{SPEAKABLE_INSTRUCTIONS}".strip()
        try:
            self.passages = self.search_knowledge(text)
        except EngineError as exc:  # the reply goes on without knowledge
            logger.warning("knowledge not searched: %s", exc.message)
        if self.passages:
            system += "\n\n" + knowledge_prompt([p.text for p in self.passages])
        messages = [
            {"role": "system", "content": system},
            *self.job.get("history", []),
            {"role": "user", "content": text},
        ]
        threading.Thread(
            target=self._generate,
            args=(messages, agent["responder_model"], agent["responder_temperature"]),
            name="responder",
            daemon=True,
        ).start()

    def classify(self, text: str) -> str:
        return wait_for_intent(self.job, text)

    def announce_intent(self, intent: str) -> None:
        self.send_event({"type": "intent", "intent": intent})

    def keep_reply(self) -> Spoken:
        stream = SentenceStream()
        while True:
            try:
                kind, value = self._tokens.get(timeout=settings.ENGINE_TIMEOUT_S)
            except queue.Empty:
                kind, value = "error", EngineError("respond", "llm", "timeout", "No token in time.")
            if not self._current():
                self.cancel_reply()
                break
            if kind == "error":
                if stream.text:
                    break  # keep what was said; the reply just ends early
                raise value
            delta, sentences = stream.close() if kind == "end" else stream.feed(value)
            self._out(delta, sentences)
            if kind == "end":
                break
        sources = tuple(dict.fromkeys(p.entry_id for p in self.passages))
        return Spoken(stream.text, self.sentences, sources)

    def cancel_reply(self) -> None:
        self._cancelled.set()

    def say(self, text: str) -> Spoken:
        stream = SentenceStream()
        self._out(*stream.feed(text))
        self._out(*stream.close())
        return Spoken(stream.text, self.sentences)

    def search_knowledge(self, text: str) -> list[knowledge.Passage]:
        try:
            return knowledge.search(self.job["agent"]["id"], text)
        except DatabaseError as exc:
            raise EngineError("respond", "knowledge", "unavailable", str(exc)) from exc

    def run_tool(self, tool: str, text: str) -> Spoken:
        # Tool execution is built separately (issue 12, tools); until it is
        # wired here a tool route gets the fallback line and an error event.
        raise EngineError("respond", "tools", "unavailable", f"Tool {tool!r} cannot run yet.")

    def hand_off(self, to: str) -> None:
        self.send_event({"type": "handoff", "to": to})

    # --- helpers ----------------------------------------------------------------

    def _generate(self, messages: list[dict[str, str]], model: str, temperature: float) -> None:
        """Responder thread: put ("delta", text)... then ("end", None) or ("error", exc)."""
        try:
            for delta in get_llm().stream(messages, model, temperature, MAX_REPLY_TOKENS):
                if self.first_token_at is None:
                    self.first_token_at = time.time()
                if self._cancelled.is_set():
                    return
                self._tokens.put(("delta", delta))
            self._tokens.put(("end", None))
        except EngineError as exc:
            self._tokens.put(("error", exc))
        except Exception as exc:  # a provider bug must still end the turn politely
            self._tokens.put(("error", EngineError("respond", "llm", "failed", str(exc))))

    def _current(self) -> bool:
        if not self.stale and not is_current(self.job["session_id"], self.job["turn_id"]):
            self.stale = True
        return not self.stale

    def _out(self, delta: str, sentences: list[str]) -> None:
        if delta and self._current():
            self.send_event({"type": "response.delta", "text": delta})
        for sentence in sentences:
            if not self._current():
                return
            synthesize.apply_async(
                args=[self.job], kwargs={"sentence": self.sentences, "text": sentence}
            )
            self.sentences += 1

    def send_event(self, event: dict) -> None:
        relay.send(self.job["channel_name"], event_message(self.job, event))


def answer(job: Job, text: str) -> None:
    """Run the dialog graph for the caller's ``text`` and close the turn.

    The worker saves what only it knows (intent, classify_ms, first_token_ms);
    the reply's text goes to the call in ``reply_done``, and the call saves
    what the caller actually heard of it (docs/pipeline.md, "Persistence").
    """
    nodes = TurnReply(job, text)
    state = build_dialog_graph(nodes, job["agent"].get("routes")).invoke({"text": text})
    if nodes.stale:
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
def reply(job: Job, text: str) -> None:
    """Answer the caller's transcribed ``text``."""
    answer(job, text)
