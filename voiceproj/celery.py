"""The one Celery app of the project, with the pipeline's queues and routes.

Each pipeline stage has its own queue so its worker pool can be sized and
placed independently (STT/TTS on CPU hosts, classify/respond on GPU hosts).
Every task is routed to its queue by name (voiceproj/pipeline.py's
TASK_QUEUES), so a task sent by name lands on the right pool.

The settings below are tuned for latency, not throughput: a caller is waiting
on every task.
"""

import logging
import logging.config
import os
import sys
from collections.abc import Callable

from celery import Celery
from celery.concurrency.solo import TaskPool as SoloPool
from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_ready,
)
from kombu import Queue

from voiceproj.pipeline import ALL_QUEUES, TASK_QUEUES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproj.settings")
# faster-whisper's CTranslate2 runs on GNU OpenMP, whose idle threads spin
# on the cores after every decode. On a small box that spinning starved the
# responder (niced, one thread) and the classifier right when the transcript
# was out: a reply's first token came 160 ms after the reply task started
# instead of 55. Idle OpenMP threads sleep instead (docs/engines.md). Set
# before any engine library loads (they load in the pool processes), and
# only where the operator has not chosen a policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

VISIBILITY_TIMEOUT_S = 150

WORKER_MODULES = (
    "workers.stt",
    "workers.classify",
    "workers.respond",
    "workers.dialog",
    "workers.tts",
    "workers.housekeeping",
    "calls.scenarios.tasks",
)

app = Celery("voiceproj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ALL_QUEUES]
app.conf.task_default_queue = "default"
app.conf.update(
    task_routes={name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # A worker reserves only the task it runs: a second turn waiting behind a
    # long reply on one worker would otherwise stall while an idle worker of
    # the same pool could have taken it.
    worker_prefetch_multiplier=1,
    # Acknowledge after the task ran, so a job whose whole worker died (deploy,
    # host lost) is redelivered after the visibility timeout below rather than
    # dropped; workers.turntask makes that redelivery a no-op once the turn was
    # failed over. A pool process that dies is not requeued: its prefork parent
    # reports the turn failed at once (task_failure) and the caller hears the
    # fallback line, which beats replaying half a reply a second time.
    task_acks_late=True,
    task_reject_on_worker_lost=False,
    # Pipeline results travel over the channel layer, never through a result
    # backend: storing them would only cost a Redis write per task.
    task_ignore_result=True,
    # A stale job is worthless: a caller does not wait a minute for an answer.
    # Per-task limits (soft_time_limit / time_limit) are set on each task.
    task_time_limit=120,
    task_soft_time_limit=100,
    # celery#4378: with late acks and prefetch 1, a task queued behind a busy
    # worker used to wait for the worker's next BRPOP wake-up (1 s timeout).
    # bench/pipeline.py measures it: with kombu 5.7 it is gone (queued hop
    # p50 1.8-2.4 ms for solo and prefork, even with CELERY_BROKER_POLL_S=1).
    # The 50 ms BRPOP timeout (kombu 5.7 takes it from ``polling_interval``)
    # still bounds that wait should it come back, for 20 cheap BRPOPs a second
    # per idle worker; a task pushed to an idle worker starts at once anyway.
    broker_transport_options={
        "polling_interval": float(os.environ.get("CELERY_BROKER_POLL_S", "0.05")),
        # An unacknowledged job comes back this long after its worker died.
        # Longer than the longest hard time limit (the respond queue's 100 s),
        # so a job still running is never handed to a second worker; the
        # default of an hour would write into calls that ended long before.
        "visibility_timeout": VISIBILITY_TIMEOUT_S,
        # A stalled Redis must not hold a publish (the consumer's event loop
        # waits on it through a thread) or a worker for redis-py's defaults.
        "socket_timeout": 5,
        "socket_connect_timeout": 3,
    },
    broker_connection_retry_on_startup=True,
    # Task events (received, started, succeeded, failed, and sent by the web
    # process) go to the broker, where Flower shows each task and the worker
    # that ran it: which host of a pool took which turn's stage. They cost a
    # few small Redis publishes per task, which Redis drops while no monitor
    # subscribes. Set here, so every worker sends them without a -E flag.
    worker_send_task_events=True,
    task_send_sent_event=True,
    # A publish that cannot reach Redis gives up within about two seconds: the
    # caller is told the service is unavailable instead of waiting.
    task_publish_retry_policy={
        "max_retries": 2,
        "interval_start": 0.2,
        "interval_step": 0.5,
        "interval_max": 1.0,
    },
    # A prefork pool process loads its engines before it reports alive
    # (load_engines below); Celery's 4 s default kills it on a busy 2-core box.
    worker_proc_alive_timeout=120,
    # Celery's Django fixup closes every database connection before and after
    # each task unless this is set, and then by a count of tasks: a new
    # PostgreSQL connection for each of a turn's tasks (about 7 ms each, the
    # server forks for it), whatever voiceproj/dbconn.py asked. Set beyond
    # reach, the fixup leaves them alone; check_task_connections below
    # applies Django's own rules (DB_KEEP_CONNECTIONS_S, health checks).
    CELERY_DB_REUSE_MAX=sys.maxsize,
    # Workers import their task modules at start (the web process never does:
    # it sends tasks by name and must not load engine code).
    imports=WORKER_MODULES,
    # Run by `celery beat` (one process per deployment).
    beat_schedule={
        "end-abandoned-sessions": {
            "task": "workers.housekeeping.end_abandoned_sessions",
            "schedule": 60.0,
        },
        # Recordings past RECORDING_RETENTION_DAYS (docs/recordings.md).
        "delete-old-recordings": {
            "task": "workers.housekeeping.delete_old_recordings",
            "schedule": 3600.0,
        },
    },
)


logger = logging.getLogger(__name__)


@setup_logging.connect
def log_as_the_web_process_does(**kwargs: object) -> None:
    """Workers (and beat) log through the LOGGING config (settings.py) rather
    than Celery's own: the same format (LOG_FORMAT) and level (LOG_LEVEL; a
    ``-l`` flag is not used) and the turn's ids on every record
    (voiceproj/logcontext.py). Celery configures no logging when this answers."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@worker_ready.connect
def prepare_solo_worker(sender: object, **kwargs: object) -> None:
    """A solo worker runs its tasks itself: load its engines before the first."""
    if isinstance(sender.pool, SoloPool):  # type: ignore[attr-defined]
        prepare_task_thread()


@task_prerun.connect
@task_postrun.connect
def check_task_connections(**kwargs: object) -> None:
    """Around each task, as Django does around a request: close the database
    connections that failed or are older than their ``CONN_MAX_AGE``
    (``DB_KEEP_CONNECTIONS_S`` on a task thread), and have the others checked
    before their next use."""
    from django.db import close_old_connections

    close_old_connections()


@worker_process_init.connect
def prepare_pool_process(**kwargs: object) -> None:
    """A prefork pool process (the first, or one replacing a dead one) loads its engines."""
    prepare_task_thread()


def prepare_task_thread() -> None:
    """Ready the thread that will run this process's tasks: its engines and a kept
    database connection (voiceproj/dbconn.py), one task after the other."""
    from voiceproj.dbconn import keep_connection

    keep_connection()
    load_engines()


def load_engines() -> None:
    """Load the models this worker's queues need before it takes its first task.

    A model loaded lazily would add its load time (about a second on CPU) to
    the first caller's turn on every freshly started worker.
    """
    from agents.models import DEFAULT_VOICE
    from workers.engines import get_llm, get_stt, get_tts
    from workers.engines.base import EngineError

    def warm_tts() -> None:
        # Piper loads a voice on its first sentence: speak one to load it.
        for _chunk in get_tts().stream("Ready.", DEFAULT_VOICE):
            pass

    queues = set(app.amqp.queues.consume_from or ())
    loaders: dict[str, Callable[[], object]] = {
        "stt": get_stt,
        "classify": get_llm,
        "respond": get_llm,
        "tts": warm_tts,
    }
    for queue, load in loaders.items():
        if queue in queues:
            try:
                load()
            except EngineError as exc:
                logger.warning("could not preload the %s engine: %s", queue, exc)
