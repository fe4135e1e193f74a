"""/api/health (public liveness) and /api/health/ready (monitoring readiness).

Against the real database, Redis and a real Celery worker process.
"""

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
from django.test import Client, override_settings

from tests.conftest import jwt_headers

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


MONITORING_TOKEN = "monitoring-token-for-tests-0123456789"
READY = "/api/health/ready"


@pytest.fixture(autouse=True)
def _monitoring_token(settings):
    settings.MONITORING_TOKEN = MONITORING_TOKEN


def ready(client, token: str = MONITORING_TOKEN):
    return client.get(READY, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_liveness_is_public_and_says_nothing_else(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_liveness_answers_while_redis_is_down(client):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{unused_port()}/0"):
        assert client.get("/api/health").status_code == 200


def test_readiness_needs_the_monitoring_token_or_a_staff_user(client, make_user):
    assert client.get(READY).status_code == 401
    assert ready(client, token="a-guess").status_code == 401
    assert client.get(READY, **jwt_headers(make_user("plain"))).status_code == 401
    assert client.get(READY, **jwt_headers(make_user("ops", is_staff=True))).status_code == 200
    staff_browser = Client()
    staff_browser.force_login(make_user("admin", is_staff=True))
    assert staff_browser.get(READY).status_code == 200


def test_readiness_reports_database_redis_and_every_queue(client):
    response = ready(client)
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is True
    assert set(body["queues"]) == {"stt", "classify", "respond", "tts", "default"}
    assert body["status"] in {"ok", "degraded"}


def test_readiness_is_503_when_redis_is_down_and_keeps_the_exception_to_the_log(client, caplog):
    port = unused_port()
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0"):
        response = ready(client)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["redis"] == {"ok": False, "error": "unreachable"}
    assert body["database"]["ok"] is True
    assert str(port) not in response.content.decode()
    assert str(port) in caplog.text


def test_readiness_counts_a_live_worker_on_its_queue(client):
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
            seen = ready(client).json()["queues"]["default"]["workers"]
        assert seen >= 1
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_readiness_is_503_when_the_database_is_down(tmp_path):
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
            "MONITORING_TOKEN": MONITORING_TOKEN,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + PROCESS_START_TIMEOUT_S
        while True:
            assert server.poll() is None, (tmp_path / "daphne.log").read_text()
            try:
                probe = urllib.request.Request(
                    f"http://127.0.0.1:{port}{READY}",
                    headers={"Authorization": f"Bearer {MONITORING_TOKEN}"},
                )
                urllib.request.urlopen(probe, timeout=5)
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
        assert body["database"] == {"ok": False, "error": "unreachable"}
        assert body["redis"]["ok"] is True
    finally:
        server.terminate()
        server.wait(timeout=30)
