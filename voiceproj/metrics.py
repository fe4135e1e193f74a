"""``GET /metrics``: the platform's figures in Prometheus's text format.

Counted where calls run (this web process's call cores, calls/core.py):

* ``voice_stage_latency_seconds{stage}`` — histograms of each turn's
  ``stt``, ``classify``, ``first_token`` (workers' figures, from their metrics
  events), ``first_audio`` and ``total`` (end of the caller's turn → first
  audio / reply delivered);
* ``voice_turns_total{outcome}`` — turns ``answered``, answered by the
  ``fallback`` line, ``interrupted`` by the caller, ``failed`` (turn_failed);
* ``voice_errors_total{code}`` — ``error`` events sent to callers, by code.

Read from Redis at each scrape, so they are the same from every web process:

* ``voice_active_calls`` — calls with a live socket (presence keys);
* ``voice_queue_depth{queue}`` — jobs waiting in each Celery queue.

Each web process keeps its own counters (Prometheus scrapes each one; sum
them across instances). Readable with the MONITORING_TOKEN or by staff
(voiceproj/monitoring.py); anyone else gets 401.
"""

from collections.abc import Iterator

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from voiceproj.monitoring import may_monitor
from voiceproj.pipeline import ALL_QUEUES, presence_key

# Seconds: from a fast cloud turn (0.1 s) to a slow CPU one (30 s).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)

STAGE_LATENCY = Histogram(
    "voice_stage_latency_seconds",
    "Latency of each stage of a turn.",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
TURNS = Counter("voice_turns", "Agent turns by outcome.", ["outcome"])
ERRORS = Counter("voice_errors", "Error events sent to callers, by code.", ["code"])
# A scrape must not hang on a stalled Redis.
REDIS_TIMEOUT_S = 2.0


def observe_turn(timings: dict[str, int | None]) -> None:
    """Record a delivered turn's timings (``*_ms`` fields of its metrics event)."""
    for field, value in timings.items():
        if value is not None and field.endswith("_ms"):
            STAGE_LATENCY.labels(stage=field.removesuffix("_ms")).observe(value / 1000)


class RedisCollector(Collector):
    """Active calls and queue depths, read from Redis when scraped."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        calls = GaugeMetricFamily("voice_active_calls", "Calls with a live socket.")
        depth = GaugeMetricFamily(
            "voice_queue_depth", "Jobs waiting in each queue.", labels=["queue"]
        )
        try:
            with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S) as r:
                calls.add_metric([], sum(1 for _ in r.scan_iter(presence_key("*"), count=1000)))
            yield calls
            broker = settings.CELERY_BROKER_URL
            if broker.startswith(("redis://", "rediss://")):  # kombu keeps a queue as a list
                with redis.Redis.from_url(broker, socket_timeout=REDIS_TIMEOUT_S) as r:
                    for queue in ALL_QUEUES:
                        depth.add_metric([queue], r.llen(queue))
                yield depth
        except redis.RedisError:
            return  # Redis is down: /api/health says so; the counters still answer


REGISTRY.register(RedisCollector())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not may_monitor(request):
        response = HttpResponse(
            "The monitoring token or a staff login is required.\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
