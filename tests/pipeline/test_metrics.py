"""``GET /metrics`` of a real daphne after real turns: Prometheus text that a
scraper parses, with the turn's stage latencies, its outcome, the errors sent
by code, the live calls and every queue's depth."""

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from voiceproj.pipeline import ALL_QUEUES

from .wire import next_event, open_socket, send_json

pytestmark = pytest.mark.e2e


def scrape(server, token: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics read with ``token``: (name, sorted labels) → value."""
    response = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_turns_stages_errors_calls_and_queues(
    daphne_server, celery_workers, make_call
):
    call = make_call()
    staff = make_call(user=User.objects.create_user("ops", "ops@example.com", is_staff=True))
    before = scrape(daphne_server, staff.token)

    def count(samples: dict, name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    async def scenario() -> dict:
        async with await open_socket(daphne_server.ws_url(call.session_id), call.token) as ws:
            await next_event(ws, "ready")
            await ws.send("{not json")
            await next_event(ws, "error")
            await send_json(ws, type="text", text="What time do you open tomorrow?")
            await next_event(ws, "metrics", timeout=120)
            return scrape(daphne_server, staff.token)  # while the call is live

    during = asyncio.run(scenario())
    assert count(during, "voice_active_calls") >= 1
    for queue in ALL_QUEUES:
        assert ("voice_queue_depth", (("queue", queue),)) in during
    assert count(during, "voice_errors_total", code="bad_json") == (
        count(before, "voice_errors_total", code="bad_json") + 1
    )
    turns = count(during, "voice_turns_total", outcome="answered") + count(
        during, "voice_turns_total", outcome="fallback"
    )
    assert (
        turns
        == count(before, "voice_turns_total", outcome="answered")
        + count(before, "voice_turns_total", outcome="fallback")
        + 1
    )
    for stage in ("classify", "first_token", "first_audio", "total"):
        observed = count(during, "voice_stage_latency_seconds_count", stage=stage)
        assert observed == count(before, "voice_stage_latency_seconds_count", stage=stage) + 1


def test_metrics_are_for_monitoring_only(daphne_server, make_call):
    """Queue depths and call counts tell an attacker what to hit: staff or the token only."""
    caller = make_call()
    url = f"{daphne_server.url}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    refused = httpx.get(url, headers={"Authorization": f"Bearer {caller.token}"}, timeout=10)
    assert refused.status_code == 401
