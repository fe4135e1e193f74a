"""The classify queue: the caller's intent, decided by the classifier model.

Consumes ``workers.classify.classify_intent(job, text=...)``, sent with the
reply task by the worker that has the turn's text (:func:`start_classify`).
Produces the intent (or the engine error)
as a JSON result on the Redis list ``voice:intent:<session>:<turn>``, which
:func:`wait_for_intent` pops. A Redis list, not a Celery result backend:
pipeline tasks store no results, and a BLPOP wakes the waiter the moment the
result is pushed.
"""

import json
import logging
import time
from functools import lru_cache
from typing import cast

import redis
from celery import shared_task
from django.conf import settings

from voiceproj.pipeline import CLASSIFY_TASK, AgentConfig, Job, intent_key
from workers.engines import get_classifier
from workers.engines.base import EngineError
from workers.turnstate import is_current
from workers.turntask import TurnTask

logger = logging.getLogger(__name__)

# The result outlives any waiter (which gives up after classify_timeout_s()).
RESULT_TTL_S = 60
# The waiter wakes this often to check that its turn is still current: a turn
# failed over (the classify worker died) frees the respond worker at once
# instead of after the whole timeout.
WAIT_SLICE_S = 0.5


def classify_timeout_s() -> float:
    """How long the graph waits for the intent before it gives the fallback line.

    A 135M model labels an utterance in under a second alone, but on a small
    shared box the speculative responder competes for the same cores and
    llama.cpp's spinning threads slow down badly when oversubscribed (seen:
    over 15 s). The engine timeout is the honest bound for a stuck classifier.
    """
    return settings.ENGINE_TIMEOUT_S


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    # One client per process: a new one costs a connection and its handshake
    # on the turn's way to its intent. A BLPOP slice plus a margin as the
    # socket timeout; a stalled Redis fails the read after that.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=WAIT_SLICE_S + 5)


def label(agent: AgentConfig, text: str) -> str:
    """The agent's intent for ``text``, asked of the configured classifier
    (``workers.engines.get_classifier``).

    The one place the classify queue (and ``bench/quality.py``) calls the engine.
    """
    return get_classifier().classify(
        text,
        cast(list[dict[str, str]], agent["intents"]),
        model=agent["classifier_model"],
        temperature=agent["classifier_temperature"],
        # A job queued by a web process older than the examples field has none.
        examples=agent.get("examples"),
    )


@shared_task(name=CLASSIFY_TASK, base=TurnTask, soft_time_limit=40, time_limit=50)
def classify_intent(job: Job, text: str) -> None:
    """Label ``text`` with one of the agent's intents and push the result.

    Every failure is pushed as an error result, so the waiting responder falls
    back at once rather than waiting out its timeout.
    """
    result: dict[str, object]
    try:
        result = {"intent": label(job["agent"], text)}
    except EngineError as exc:
        result = {"error": exc.code, "message": exc.message}
    except Exception as exc:  # a provider bug must still answer the waiter
        logger.exception("classifier failed on turn %s of %s", job["turn_id"], job["session_id"])
        result = {"error": "failed", "message": f"The classifier failed ({type(exc).__name__})."}
    key = intent_key(job["session_id"], job["turn_id"])
    with _redis().pipeline() as pipe:
        pipe.rpush(key, json.dumps(result))
        pipe.expire(key, RESULT_TTL_S)
        pipe.execute()


def start_classify(job: Job, text: str) -> None:
    """Send ``text`` to the classify queue; :func:`wait_for_intent` takes the answer.

    Sent by whoever hands the turn's text to the responder, at the same time
    (``workers.stt.transcribe``, ``workers.dialog.run_text_turn``): the
    classifier then runs while the reply task is still on its way to a
    respond worker, instead of after it.
    """
    _redis().delete(intent_key(job["session_id"], job["turn_id"]))
    classify_intent.apply_async(args=[job], kwargs={"text": text})


def wait_for_intent(job: Job) -> str:
    """The intent :func:`start_classify` asked for, once the classify worker pushed it."""
    key = intent_key(job["session_id"], job["turn_id"])
    client = _redis()
    deadline = time.monotonic() + classify_timeout_s()
    popped = None
    while popped is None and time.monotonic() < deadline:
        if not is_current(job["session_id"], job["turn_id"]):
            raise EngineError("classify", "celery", "stale", "The turn is over.")
        popped = client.blpop([key], timeout=WAIT_SLICE_S)
    if popped is None:
        raise EngineError("classify", "celery", "timeout", "No classify worker answered in time.")
    result = json.loads(popped[1])
    if "error" in result:
        raise EngineError("classify", "llm", result["error"], result["message"])
    return str(result["intent"])
