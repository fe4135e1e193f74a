"""Session and turn ids on the log records of a call's and a turn's work.

A turn crosses processes: the web process that holds the caller's socket and
one worker per pipeline stage, possibly each on another host. Every record
logged for a turn carries ``session_id`` and ``turn_id`` as fields, so the
lines of one turn can be gathered from all of them (``LOG_FORMAT=json`` emits
them as JSON keys; docs/reliability.md).

* :class:`TurnContextFilter`, on the LOGGING config's handlers, stamps every
  record with the ids bound by :func:`turn_context` (``None`` outside one), so
  code logging through a plain ``logging.getLogger`` needs no change;
* :func:`turn_context` binds them in a context variable: a turn task binds its
  job's ids around its run (workers/turntask.py);
* :class:`CallLogger` is the call core's logger: the call's session id and its
  current turn id, read when the record is made (calls/core.py).
"""

import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

# The record attributes, and the JSON keys, of the ids.
FIELDS = ("session_id", "turn_id")

_bound: ContextVar[tuple[str, int] | None] = ContextVar("log_turn", default=None)


@contextmanager
def turn_context(session_id: str, turn_id: int) -> Iterator[None]:
    """Records logged inside carry these ids (unless the call gives its own)."""
    token = _bound.set((str(session_id), turn_id))
    try:
        yield
    finally:
        _bound.reset(token)


class TurnContextFilter(logging.Filter):
    """Gives every record ``session_id`` and ``turn_id``: its own, the bound ones, or None."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _bound.get() or (None, None)
        for name, value in zip(FIELDS, bound, strict=True):
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class Call(Protocol):
    session_id: str
    turn_id: int


class CallLogger(logging.LoggerAdapter[logging.Logger]):
    """A call's logger: each record carries the call's session id and the turn it is on."""

    def __init__(self, logger: logging.Logger, call: Call) -> None:
        super().__init__(logger)
        self.call = call

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        ids = {"session_id": self.call.session_id, "turn_id": getattr(self.call, "turn_id", None)}
        kwargs["extra"] = {**ids, **kwargs.get("extra", {})}
        return msg, kwargs
