"""The default queue: periodic upkeep that no caller waits on.

Consumes ``workers.housekeeping.end_abandoned_sessions`` (every minute from
Celery beat, see ``beat_schedule`` in voiceproj/celery.py),
``workers.housekeeping.delete_old_recordings`` (hourly) and
``workers.housekeeping.probe`` (bench/pipeline.py's hop-latency probe). Produces ended
sessions (reason ``idle``) for calls that no socket holds and that saw no turn
for the idle timeout plus the disconnect grace: the consumer ends idle and
disconnected calls itself, but not when its daphne process died with them;
and deletes call recordings older than RECORDING_RETENTION_DAYS, files included.
"""

import json
import time
from datetime import timedelta

import redis
from celery import shared_task
from django.conf import settings
from django.db.models import Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from calls.models import CallSession, Recording
from calls.services import end_session
from voiceproj.pipeline import (
    DELETE_OLD_RECORDINGS_TASK,
    END_ABANDONED_TASK,
    PROBE_TASK,
    presence_key,
)


# Both limits are set: the global soft limit (100 s) above a task's own hard
# limit makes Celery refuse to send the task (beat failed every minute).
@shared_task(name=END_ABANDONED_TASK, soft_time_limit=50, time_limit=60)
def end_abandoned_sessions() -> int:
    """End abandoned active sessions; return how many were ended."""
    quiet_for = timedelta(seconds=settings.VOICE_IDLE_TIMEOUT_S + settings.VOICE_DISCONNECT_GRACE_S)
    cutoff = timezone.now() - quiet_for
    candidates = (
        CallSession.objects.filter(status=CallSession.Status.ACTIVE)
        .annotate(last_seen=Coalesce(Max("turns__created_at"), "started_at"))
        .filter(last_seen__lt=cutoff)
    )
    client = redis.Redis.from_url(settings.REDIS_URL)
    ended = 0
    try:
        for session in candidates:
            if client.exists(presence_key(str(session.id))):
                continue  # a socket still holds it; the consumer's idle timer decides
            end_session(session, "idle")
            ended += 1
    finally:
        client.close()
    return ended


@shared_task(name=DELETE_OLD_RECORDINGS_TASK, soft_time_limit=50, time_limit=60)
def delete_old_recordings() -> int:
    """Delete recordings older than RECORDING_RETENTION_DAYS (0 keeps them all);
    return how many. Each file leaves the storage with its record (calls/models.py)."""
    days = settings.RECORDING_RETENTION_DAYS
    if not days:
        return 0
    old = Recording.objects.filter(created_at__lt=timezone.now() - timedelta(days=days))
    deleted, _ = old.delete()
    return deleted


@shared_task(name=PROBE_TASK)
def probe(key: str, sent_at: float, hold_s: float = 0.0) -> None:
    """Record when this task started (and, after ``hold_s`` of work, ended) on ``key``."""
    started = time.time()
    time.sleep(hold_s)
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.rpush(key, json.dumps({"sent": sent_at, "started": started, "ended": time.time()}))
    client.expire(key, 600)
    client.close()
