"""Playing a scenario: one real call through the pipeline, typed line by line.

The runner is one more transport of the call core (calls/core.py), like the
protocol-v1 socket and Twilio's: it types each line as a ``text`` turn, relays
the workers' channel-layer messages to the core as a consumer would, and
keeps what the core says back. So a scenario runs exactly what a typed turn
of a real call runs — quotas, the classify → respond → tts workers, the
watchdog and fallback, the saved transcript — with nothing copied from it.

:func:`play` runs where it is called (the ``run_scenarios`` command) or in the
Celery task of scenarios/tasks.py (``POST /api/scenarios/{sid}/run``).
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from channels.layers import DEFAULT_CHANNEL_LAYER, BaseChannelLayer, channel_layers
from django.utils import timezone

from calls.core import CallCore
from calls.models import CallSession
from calls.services import end_session, start_session
from voiceproj.errors import QuotaExceeded

from .checks import Check, TurnOutcome, check_turn
from .models import ScenarioRun

logger = logging.getLogger(__name__)

# A backstop only: the core's watchdog fails a turn whose workers went silent
# (VOICE_TURN_STALL_S) and answers it with the fallback line well before this.
# As long as the pipeline's longest task may run (task_time_limit), so a slow
# but living model on a CPU host is never cut short.
TURN_TIMEOUT_S = 120.0
# A call ends right after the reply that ends it is saved: a few database
# round trips, so seconds are ample even on a loaded host.
ENDING_WAIT_S = 5.0
ENDING_POLL_S = 0.05
END_REASON = "scenario finished"
# Sent by the runner to its own channel to end the relay of the call's messages.
STOP = {"type": "scenario.stop"}
# How long the relay may take to drain up to STOP before it is cancelled anyway.
RELAY_STOP_TIMEOUT_S = 10.0


class RunRefused(Exception):
    """The scenario's call could not be held (quota, inactive agent, services down)."""


@dataclass
class ScriptedCaller:
    """The transport of a scenario's call: it keeps the events, drops the audio."""

    confirms_playback: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    # Set after every worker message the core handled: the turn may be over.
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    async def send_audio(self, pcm: bytes, sample_rate: int) -> None:
        """A typed check reads the reply's text; its audio is not needed."""

    async def sentence_sent(self, turn_id: int, sentence: int) -> None:
        """Nothing to confirm: a sentence counts as heard once it went out."""

    async def close(self, code: int) -> None:
        """The core ended the call; :func:`converse` notices through ``core.ended``."""


@dataclass
class TurnResult:
    say: str
    outcome: TurnOutcome
    ms: int | None

    def as_json(self, expect: dict[str, Any]) -> dict[str, Any]:
        checks: list[Check] = check_turn(expect, self.outcome)
        return {
            "say": self.say,
            "reply": self.outcome.reply,
            "intent": self.outcome.intent,
            "checks": checks,
            "ms": self.ms,
        }


async def _relay(
    layer: BaseChannelLayer, channel: str, core: CallCore, caller: ScriptedCaller
) -> None:
    """What a consumer does for its socket: the workers' messages go to the core.

    It ends on :data:`STOP`, never by cancellation: a receive cancelled inside
    Redis's blocking pop can come back as a connection error, which the
    project's layer (voiceproj/channel_layer.py) retries for ever.
    """
    while True:
        message = await layer.receive(channel)
        if message.get("type") == STOP["type"]:
            return
        if str(message.get("type", "")).startswith("pipeline."):
            await core.on_pipeline(message)
            caller.changed.set()


def _answering(core: CallCore) -> bool:
    return core.reply is not None and not core.reply.finished


async def _take_turn(core: CallCore, caller: ScriptedCaller, line: str) -> TurnResult:
    """Type ``line`` and wait until its reply was delivered (or the turn refused)."""
    first_event = len(caller.events)
    started = time.monotonic()
    await core.guarded(core.text(line))
    timed_out = False
    while _answering(core) and not core.ended:
        caller.changed.clear()
        remaining = started + TURN_TIMEOUT_S - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        try:
            await asyncio.wait_for(caller.changed.wait(), remaining)
        except TimeoutError:
            continue
    reply = core.reply
    if reply is not None and (reply.final or {}).get("end_call"):
        # The reply that ends the call is marked finished before the call has
        # ended (its turn is saved in between): wait for the end it announced.
        deadline = time.monotonic() + ENDING_WAIT_S
        while not core.ended and time.monotonic() < deadline:
            await asyncio.sleep(ENDING_POLL_S)
    outcome = TurnOutcome()
    total_ms = None
    for event in caller.events[first_event:]:
        kind = event["type"]
        if kind == "response.done":
            outcome.reply = event["text"]
        elif kind == "intent":
            outcome.intent = event["intent"]
        elif kind == "error":
            outcome.errors.append(f"{event['code']}: {event['message']}")
        elif kind == "metrics":
            total_ms = event.get("total_ms")
        elif kind == "ended":
            outcome.ended_call = True
        elif kind == "tool.call":
            outcome.tools.append(event["name"])
    if timed_out:
        outcome.errors.append(f"no reply within {TURN_TIMEOUT_S:.0f} s")
    if total_ms is None:
        total_ms = round((time.monotonic() - started) * 1000)
    return TurnResult(line, outcome, total_ms)


async def converse(session_id: str, lines: list[str]) -> list[TurnResult]:
    """Hold the call ``session_id`` and type ``lines``; stop early if the call ends."""
    # A layer of this run's own: channels-redis binds its receive state to one
    # event loop, and each run (in a long-lived worker) has a loop of its own.
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    channel = await layer.new_channel()
    caller = ScriptedCaller()
    core = CallCore(session_id, channel, caller)
    refusal = await core.admit(None)
    if refusal is not None:
        await core.stop()
        await layer.flush()  # this loop's Redis connections, before asyncio.run closes it
        raise RunRefused(core.refusal or f"The call was refused (close code {refusal}).")
    core.greet = False  # the greeting is no answer to a line of the scenario
    relay = asyncio.create_task(_relay(layer, channel, core, caller))
    results: list[TurnResult] = []
    try:
        await core.start()
        for line in lines:
            if core.ended:
                break
            results.append(await _take_turn(core, caller, line))
    finally:
        await core.end(END_REASON)
        await core.stop()
        await layer.send(channel, STOP)
        try:
            await asyncio.wait_for(relay, RELAY_STOP_TIMEOUT_S)
        except TimeoutError:
            logger.warning("scenario call %s: the relay did not stop", session_id)
        await layer.flush()  # this loop's Redis connections, before asyncio.run closes it
    return results


def _not_reached(say: str) -> dict[str, Any]:
    check: Check = {"name": "reached", "ok": False, "detail": "the call had ended before this line"}
    return {"say": say, "reply": "", "intent": "", "checks": [check], "ms": None}


def play(run: ScenarioRun) -> ScenarioRun:
    """Run ``run``'s scenario now and save every turn's outcome and the verdict."""
    scenario = run.scenario
    agent = scenario.agent
    run.status = ScenarioRun.Status.RUNNING
    run.save(update_fields=["status"])
    turns: list[dict[str, Any]] = []
    try:
        if not agent.is_active:
            raise RunRefused("The agent is inactive; activate it to run its scenarios.")
        run.session = start_session(agent, agent.owner, channel=CallSession.Channel.SCENARIO)
        run.save(update_fields=["session"])
        results = asyncio.run(converse(str(run.session.pk), [t["say"] for t in scenario.turns]))
        turns = [r.as_json(t["expect"]) for r, t in zip(results, scenario.turns, strict=False)]
        turns += [_not_reached(t["say"]) for t in scenario.turns[len(results) :]]
    except QuotaExceeded as exc:
        run.error = str(exc.message)[:300]
    except RunRefused as exc:
        run.error = str(exc)[:300]
    except Exception:
        logger.exception("scenario run %s failed", run.pk)
        run.error = "The run failed on the server; see the worker's log."
    if run.session is not None and run.error:
        # A call the run could not hold must not wait for the idle sweep to end.
        end_session(run.session, "scenario failed")
    passed = not run.error and all(c["ok"] for turn in turns for c in turn["checks"])
    run.turns = turns
    run.status = ScenarioRun.Status.PASSED if passed else ScenarioRun.Status.FAILED
    run.finished_at = timezone.now()
    # An update, not a save: the scenario (and with it this run) may have
    # been deleted while the call was playing; then there is nothing to keep.
    ScenarioRun.objects.filter(pk=run.pk).update(
        turns=run.turns, status=run.status, error=run.error, finished_at=run.finished_at
    )
    return run
