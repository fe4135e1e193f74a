"""/api/health against the real database, Redis and a real Celery worker process."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PROCESS_START_TIMEOUT_S = 60


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db.get('USER') or 'postgres'}{password}@{db.get('HOST') or '127.0.0.1'}"
        f":{db.get('PORT') or 5432}/{db['NAME']}"
    )


def test_health_reports_database_redis_and_every_queue(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is True
    assert set(body["queues"]) == {"stt", "classify", "respond", "tts", "default"}
    assert body["status"] in {"ok", "degraded"}


def test_health_is_503_when_redis_is_down(client):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{unused_port()}/0"):
        response = client.get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["redis"]["ok"] is False
    assert "Connection" in body["redis"]["error"]
    assert body["database"]["ok"] is True


def test_health_counts_a_live_worker_on_its_queue(client):
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "voiceproj",
            "worker",
            "-P",
            "solo",
            "-Q",
            "default",
            "-n",
            f"health-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        # The test database, in case the worker picks up a stray task of another test.
        env={
            **os.environ,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "DATABASE_URL": database_url(),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + PROCESS_START_TIMEOUT_S
        seen = 0
        while time.monotonic() < deadline and not seen:
            assert worker.poll() is None, "celery worker exited"
            seen = client.get("/api/health").json()["queues"]["default"]["workers"]
        assert seen >= 1
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_health_is_503_when_the_database_is_down(tmp_path):
    """A real server process whose database does not answer still answers, with 503."""
    port = unused_port()
    log = (tmp_path / "daphne.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "voiceproj.asgi:application",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{unused_port()}/none",
            "REDIS_URL": settings.REDIS_URL,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + PROCESS_START_TIMEOUT_S
        while True:
            assert server.poll() is None, (tmp_path / "daphne.log").read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5)
            except urllib.error.HTTPError as exc:
                status, body = exc.code, json.loads(exc.read())
                break
            except OSError:
                assert time.monotonic() < deadline, "daphne did not start"
                time.sleep(0.2)
                continue
            pytest.fail("health answered 200 without a database")
        assert status == 503
        assert body["status"] == "down"
        assert body["database"]["ok"] is False
        assert body["redis"]["ok"] is True
    finally:
        server.terminate()
        server.wait(timeout=30)
