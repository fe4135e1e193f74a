"""One turn's reply as the consumer relays it (see docs/pipeline.md).

TTS jobs of two sentences may run on two workers at once, so chunks of
sentence ``n+1`` can arrive before sentence ``n`` is done. :class:`Reply`
holds them back and releases chunks strictly in sentence order. It also keeps
what the consumer's watchdog needs: when a worker last said anything about the
turn and which tasks are running with their last heartbeat. It does no I/O and
is driven by the consumer's ``pipeline_*`` handlers.
"""

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """The agent's answer to one turn, as relayed to the client so far."""

    turn_id: int
    t0: float  # epoch seconds when the caller finished (the job's ``t0``)
    sample_rate: int = 22050  # of the TTS audio, from the pipeline.audio messages
    updated: float = field(default_factory=time.monotonic)  # last worker message
    next_sentence: int = 0
    spoken: list[str] = field(default_factory=list)  # sentences whose audio all went out
    heard: int = 0  # how many of them the caller heard (see CallCore._sentence_out)
    audio_started: bool = False
    first_audio_at: float | None = None
    final: dict[str, Any] | None = None  # the pipeline.reply_done message
    timings: dict[str, int] = field(default_factory=dict)  # from workers' metrics events
    finished: bool = False
    # A fixed line this reply speaks (the greeting, the fallback of a failed
    # turn) rather than an answer: when it fails, its text is shown without audio.
    line: str | None = None
    said_before: str = ""  # what the caller heard of a failed reply this one replaces
    running: dict[str, float] = field(default_factory=dict)  # task id → last heartbeat
    _held: dict[int, list[bytes]] = field(default_factory=dict)
    _done: dict[int, str] = field(default_factory=dict)

    def add_audio(self, sentence: int, pcm: bytes) -> list[bytes]:
        """Chunks to send now: this one if its sentence is playing, else none."""
        if sentence < self.next_sentence:
            return []  # a late duplicate of a finished sentence
        if sentence == self.next_sentence:
            return [pcm]
        self._held.setdefault(sentence, []).append(pcm)
        return []

    def sentence_done(self, sentence: int, text: str) -> list[bytes]:
        """Mark ``sentence`` complete; return held chunks of the sentences now playing."""
        if sentence < self.next_sentence:
            return []
        self._done[sentence] = text
        released: list[bytes] = []
        while self.next_sentence in self._done:
            self.spoken.append(self._done.pop(self.next_sentence))
            self.next_sentence += 1
            released.extend(self._held.pop(self.next_sentence, []))
        return released

    @property
    def complete(self) -> bool:
        """The responder is done and every one of its sentences went out."""
        return self.final is not None and self.next_sentence >= int(self.final["sentences"])

    def heard_through(self, sentence: int) -> None:
        """The caller heard sentences 0..``sentence``."""
        self.heard = max(self.heard, min(sentence + 1, len(self.spoken)))

    @property
    def heard_text(self) -> str:
        """What the caller heard: what was said before, then the sentences heard."""
        own = " ".join(text.strip() for text in self.spoken[: self.heard] if text.strip())
        return " ".join(part for part in (self.said_before, own) if part)

    @property
    def text(self) -> str:
        """The reply's whole text as delivered: what was said before, then this reply."""
        spoken = " ".join(text.strip() for text in self.spoken if text.strip())
        own = (self.final or {}).get("text") or self.line or spoken
        return " ".join(part for part in (self.said_before, own) if part)

    def progress(self, task: str, running: bool) -> None:
        """A task of this turn's heartbeat (``running``) or its end."""
        if running:
            self.running[task] = time.monotonic()
        else:
            self.running.pop(task, None)

    def overdue(self, now: float, stall_s: float, queue_s: float) -> bool:
        """The turn's work is lost: a running task missed its heartbeats for
        ``stall_s``, or no worker said anything about the turn for ``queue_s``
        (a job waiting in a queue behind other turns, or lost on the way)."""
        if self.finished:
            return False
        if any(now - beat > stall_s for beat in self.running.values()):
            return True
        return now - self.updated > queue_s
