"""The base class of every Celery task that works on one caller turn.

A turn task's first argument is the job (docs/pipeline.md). Around the task's
own code, :class:`TurnTask`:

* runs it at most once (:func:`workers.turnstate.claim_task`): a job
  redelivered after its worker died does nothing, since the caller was told
  the turn failed and heard the fallback line meanwhile;
* skips it when its turn is stale (barge-in, a newer turn, a failed turn);
* sends ``pipeline.progress`` heartbeats to the consumer every
  ``HEARTBEAT_S`` while it runs (``running: false`` when it ends), so the
  consumer's watchdog tells a dead worker from a slow one within seconds;
* stamps whatever is logged meanwhile with the job's session and turn ids
  (voiceproj/logcontext.py) and logs how long the task ran.

Any failure of a turn task — an exception, a soft or hard time limit, a pool
process that died — is reported to the consumer as ``pipeline.turn_failed``
by :func:`report_turn_failure`. Celery sends ``task_failure`` from the pool
process for exceptions and from the prefork parent for hard time limits and
lost pool processes, so the report comes even when the task's process is gone.
"""

import contextvars
import logging
import threading
import time
from typing import Any, cast

from celery import Task
from celery.signals import task_failure

from voiceproj.logcontext import turn_context
from voiceproj.pipeline import HEARTBEAT_S, Job, progress_message, turn_failed_message
from workers import relay
from workers.turnstate import claim_task, is_current

logger = logging.getLogger(__name__)


class Heartbeat:
    """Sends ``pipeline.progress`` for one task from a daemon thread while it runs."""

    def __init__(self, job: Job, task_id: str) -> None:
        self.job = job
        self.task_id = task_id
        self._stopped = threading.Event()
        # In the task's context, so what the thread logs carries the turn's ids.
        beat_in_context = contextvars.copy_context().run
        self._thread = threading.Thread(
            target=beat_in_context, args=(self._beat,), name="heartbeat", daemon=True
        )

    def __enter__(self) -> "Heartbeat":
        self._send(running=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join()
        self._send(running=False)

    def _beat(self) -> None:
        while not self._stopped.wait(HEARTBEAT_S):
            self._send(running=True)

    def _send(self, running: bool) -> None:
        try:
            relay.send(self.job["channel_name"], progress_message(self.job, self.task_id, running))
        except Exception as exc:  # Redis is down: the task goes on, the watchdog decides
            logger.warning("heartbeat of %s not sent: %s", self.task_id, exc)


class TurnTask(Task):
    """A task on one turn's job: runs once, only while current, with heartbeats."""

    def __call__(self, job: Job, *args: Any, **kwargs: Any) -> Any:
        # Every record logged while the task runs carries the turn's ids.
        with turn_context(job["session_id"], job["turn_id"]):
            return self._run_once(job, *args, **kwargs)

    def _run_once(self, job: Job, *args: Any, **kwargs: Any) -> Any:
        task_id = self.request.id
        if task_id is not None and not claim_task(task_id):
            logger.warning("%s[%s] was redelivered; its turn was already over", self.name, task_id)
            return None
        if not is_current(job["session_id"], job["turn_id"]):
            logger.info("%s[%s] skipped: its turn is no longer current", self.name, task_id)
            return None
        started = time.monotonic()
        with Heartbeat(job, task_id or self.name):
            result = super().__call__(job, *args, **kwargs)
        ran_ms = (time.monotonic() - started) * 1000
        logger.info("%s[%s] ran for %.0f ms", self.name, task_id, ran_ms)
        return result


@task_failure.connect
def report_turn_failure(
    sender: object = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: list | tuple | None = None,
    **kwargs: object,
) -> None:
    """Tell the consumer that a turn task failed, so the caller hears the fallback now."""
    if not isinstance(sender, TurnTask) or not args or not isinstance(args[0], dict):
        return
    job = cast(Job, args[0])
    message = turn_failed_message(job, sender.name, type(exception).__name__)
    try:
        relay.send(job["channel_name"], message)
    except Exception:
        logger.exception("could not report the failure of %s[%s]", sender.name, task_id)
