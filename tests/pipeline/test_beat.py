"""The beat schedule, applied: every entry is sent as beat sends it and runs on
the real default worker; a misconfigured entry (beat refused one every minute
for a soft limit above its hard limit) fails here, not in production."""

import time
from datetime import timedelta

import pytest
from celery.beat import Scheduler
from django.utils import timezone

from calls.models import CallSession
from calls.services import start_session
from voiceproj.celery import app as celery_app

pytestmark = pytest.mark.e2e


def test_every_task_soft_limit_is_within_its_hard_limit():
    celery_app.loader.import_default_modules()
    for name, task in celery_app.tasks.items():
        soft = task.soft_time_limit or celery_app.conf.task_soft_time_limit
        hard = task.time_limit or celery_app.conf.task_time_limit
        assert soft is None or hard is None or soft <= hard, name


def test_every_beat_entry_is_applied_and_ends_abandoned_sessions(
    celery_workers, transactional_db, agent, user
):
    abandoned = start_session(agent, user)
    live = start_session(agent, user)
    CallSession.objects.filter(pk=abandoned.pk).update(
        started_at=timezone.now() - timedelta(days=1)
    )
    scheduler = Scheduler(app=celery_app, lazy=True)
    scheduler.setup_schedule()
    assert "end-abandoned-sessions" in scheduler.schedule
    for entry in scheduler.schedule.values():
        # What beat does each period; raises where beat would log "Couldn't apply".
        scheduler.apply_async(entry, advance=False)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        abandoned.refresh_from_db()
        if abandoned.status == CallSession.Status.ENDED:
            break
        time.sleep(0.2)
    assert (abandoned.status, abandoned.end_reason) == ("ended", "idle")
    live.refresh_from_db()
    assert live.status == CallSession.Status.ACTIVE
