"""Typed turns on the respond queue.

Consumes ``workers.dialog.run_text_turn(job, text=...)`` from the consumer
when the caller sends a ``text`` message. Produces the saved user turn, then
answers it in this same task (``workers.respond.answer``): the text is
already known, so a second hop to the respond queue would only add latency.
"""

from celery import shared_task

from calls.turns import record_turn
from voiceproj.pipeline import TEXT_TURN_TASK, Job
from workers.classify import start_classify
from workers.respond import answer
from workers.turntask import TurnTask


@shared_task(name=TEXT_TURN_TASK, base=TurnTask, soft_time_limit=90, time_limit=100)
def run_text_turn(job: Job, text: str) -> None:
    """Save the typed user turn and answer it."""
    # The classifier starts first: it runs while the turn is saved.
    start_classify(job, text)
    record_turn(job["session_id"], job["turn_id"], "user", text=text)
    answer(job, text, classify_sent=True)
