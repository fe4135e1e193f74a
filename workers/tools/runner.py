"""Running one tool call of a turn: validate, de-duplicate, send, say the result.

Consumes the turn's job and the model's :class:`~workers.engines.base.ToolCall`
(with its index in the turn); produces a :class:`ToolOutcome`: what to say,
whether the call ends or hands off, and the audit entry saved on the agent
turn (``Turn.tool_calls``).

Safety of execution (docs/tools.md):

* the arguments are validated against the tool's JSON Schema before anything
  is sent;
* a call of a turn that is no longer current (barge-in, a newer turn) is
  cancelled, never sent;
* every call has an idempotency key (session, turn, call index) written to
  Redis *before* the request: a redelivered or repeated job finds it and
  reuses the stored outcome, or — when the first attempt died mid-request —
  reports the call as already made instead of calling the operator twice;
* URLs and header secrets are read from the database at call time; the job
  (which travels through the broker) only holds the tool specs.
"""

import json
import logging
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

from agents.tools import DEFAULT_TIMEOUT_S, arguments_validator
from voiceproj.pipeline import FAREWELL_LINE, TRANSFER_LINE, Job, tool_call_key
from workers.engines.base import ToolCall
from workers.tools import builtins
from workers.tools.net import ToolFailure, request
from workers.tools.speech import failure_line, result_line
from workers.turnstate import is_current

logger = logging.getLogger(__name__)

# Longer than the broker's visibility timeout, as for task claims
# (workers/turnstate.py), so a redelivered job always finds the key.
CALL_KEY_TTL_S = 3600
PENDING = "pending"
RESULT_EXCERPT_CHARS = 300


@dataclass
class ToolOutcome:
    """A finished tool call: the audit entry plus what the turn does with it."""

    name: str
    arguments: dict[str, Any]
    status: str  # "ok" or a stable failure code
    ms: int | None
    result: str  # an excerpt of the result or the failure message
    say: str  # the sentence the caller hears ("" when cancelled)
    end_call: bool = False
    handoff: str | None = None  # the number a transfer goes to

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def audit(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arguments": self.arguments,
            "status": self.status,
            "ms": self.ms,
            "result": self.result,
        }


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def run_tool_call(job: Job, index: int, call: ToolCall) -> ToolOutcome:
    """Run the turn's ``index``-th tool call at most once; never raises for the
    tool's faults (they become a failure outcome with an apology)."""
    key = tool_call_key(job["session_id"], job["turn_id"], index)
    stored = _client().get(key)
    if stored is not None:
        return _repeat(call, stored)
    spec = next((t for t in job["agent"].get("tools", []) if t["name"] == call.name), None)
    if spec is None:
        return _failed(call, ToolFailure("unknown_tool", f"The agent has no tool {call.name!r}."))
    error = next(arguments_validator(spec["parameters"]).iter_errors(call.arguments), None)
    if error is not None:
        return _failed(call, ToolFailure("bad_arguments", error.message[:200]))
    if not is_current(job["session_id"], job["turn_id"]):
        return ToolOutcome(call.name, call.arguments, "cancelled", None, "The turn was over.", "")
    if not _client().set(key, PENDING, nx=True, ex=CALL_KEY_TTL_S):
        # Another run of the same job got there between our read and now.
        return _repeat(call, _client().get(key) or PENDING)
    started = time.monotonic()
    try:
        outcome = _execute(job, call)
    except ToolFailure as exc:
        outcome = _failed(call, exc)
    except Exception as exc:  # a bug must still end in an apology, not a dead turn
        logger.exception("tool %s failed", call.name)
        outcome = _failed(call, ToolFailure("failed", f"{type(exc).__name__}: {exc}"))
    outcome.ms = round((time.monotonic() - started) * 1000)
    _client().set(key, json.dumps(asdict(outcome)), ex=CALL_KEY_TTL_S)
    logger.info("tool %s: %s in %s ms", call.name, outcome.status, outcome.ms)
    return outcome


def _execute(job: Job, call: ToolCall) -> ToolOutcome:
    if call.name == "end_call":
        return ToolOutcome(call.name, call.arguments, "ok", None, "", FAREWELL_LINE, end_call=True)
    if call.name == "transfer_call":
        to = builtins.transfer_number(job["agent"]["id"])
        return ToolOutcome(call.name, call.arguments, "ok", None, to, TRANSFER_LINE, handoff=to)
    if call.name == "lookup_knowledge":
        answer = builtins.lookup_knowledge(job["agent"]["id"], str(call.arguments["query"]))
        return ToolOutcome(
            call.name, call.arguments, "ok", None, answer[:RESULT_EXCERPT_CHARS], answer
        )
    tool = builtins.stored_tool(job["agent"]["id"], call.name)
    body = request(
        tool["url"],
        tool.get("method", "POST"),
        tool.get("headers", {}),
        call.arguments,
        float(tool.get("timeout_s", DEFAULT_TIMEOUT_S)),
    )
    return ToolOutcome(
        call.name, call.arguments, "ok", None, body[:RESULT_EXCERPT_CHARS], result_line(body)
    )


def _failed(call: ToolCall, failure: ToolFailure) -> ToolOutcome:
    logger.warning("tool %s: %s", call.name, failure)
    return ToolOutcome(
        call.name,
        call.arguments,
        failure.code,
        None,
        failure.message[:RESULT_EXCERPT_CHARS],
        failure_line(failure.code),
    )


def _repeat(call: ToolCall, stored: bytes | str) -> ToolOutcome:
    """The outcome of a call already made for this turn: reused when it is
    known, else reported as made (the first attempt died during the request)."""
    if stored not in (PENDING, PENDING.encode()):
        return ToolOutcome(**json.loads(stored))
    logger.warning("tool %s was already called for this turn; not calling again", call.name)
    return _failed(
        call,
        ToolFailure("already_called", "The request was already sent once for this turn."),
    )
