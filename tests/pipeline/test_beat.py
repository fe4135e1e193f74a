"""The beat schedule, applied: every entry is sent as beat sends it and runs on
the real default worker; a misconfigured entry (beat refused one every minute
for a soft limit above its hard limit) fails here, not in production. The
recordings' retention runs there too."""

import time
from datetime import timedelta

import pytest
from celery.beat import Scheduler
from django.utils import timezone

from calls.models import CallSession, Recording
from calls.services import start_session
from tests.recordings import make_recording
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


def test_the_beat_entry_deletes_recordings_past_retention_and_keeps_newer(
    celery_workers, transactional_db, agent, user, tmp_path, settings
):
    old = make_recording(start_session(agent, user), tmp_path)
    new = make_recording(start_session(agent, user), tmp_path)
    days = settings.RECORDING_RETENTION_DAYS  # the worker's too: the default
    Recording.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=days, hours=1)
    )
    Recording.objects.filter(pk=new.pk).update(
        created_at=timezone.now() - timedelta(days=days, hours=-1)
    )
    scheduler = Scheduler(app=celery_app, lazy=True)
    scheduler.setup_schedule()
    scheduler.apply_async(scheduler.schedule["delete-old-recordings"], advance=False)

    deadline = time.monotonic() + 30
    while Recording.objects.filter(pk=old.pk).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Recording.objects.filter(pk=old.pk).exists()
    assert not old.file.storage.exists(old.file.name)
    assert Recording.objects.filter(pk=new.pk).exists()
    assert new.file.storage.exists(new.file.name)
    new.session.delete()  # and its file, once committed
    assert not new.file.storage.exists(new.file.name)
