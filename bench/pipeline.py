"""Latency of the pipeline's plumbing and of one text turn, on this machine.

Usage: ``python bench/pipeline.py [--runs N]`` with DATABASE_URL and REDIS_URL
pointing at a migrated database and a Redis nobody else's workers read.
Starts its own Celery workers (one per queue, ``prefork -c 1`` as in
supervisord.conf unless ``--pool`` says otherwise)
and measures, printing p50/p95/max and writing JSON under ``bench/results/``:

* ``hop_idle_ms``: Celery publish → task start on an idle worker.
* ``hop_queued_ms``: a task queued behind a busy worker: end of the task
  before → start of this one (celery#4378: up to 1000 ms with kombu's default
  BRPOP timeout; CELERY_BROKER_POLL_S=1 reproduces it).
* ``relay_ms`` / ``async_to_sync_ms``: one channel-layer send from the
  relay's long-lived loop, and the same through ``async_to_sync`` per message.
* ``text_turn_*_ms``: a typed turn sent as the consumer sends it → the first
  ``intent``, the first ``response.delta`` and the first audio chunk.
"""

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from statistics import quantiles

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproj.settings")

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from asgiref.sync import async_to_sync  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts.models import User  # noqa: E402
from agents.models import Agent  # noqa: E402
from calls.services import start_session  # noqa: E402
from voiceproj.celery import app  # noqa: E402
from workers.relay import get_relay  # noqa: E402
from workers.turnstate import turn_key  # noqa: E402

QUEUES = ("classify", "respond", "tts", "default")
QUESTIONS = [
    "What time do you open tomorrow?",
    "Can I book a table for two tonight?",
    "How much is the premium plan?",
    "Do you deliver to the city centre?",
]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cuts = quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {
        "p50": round(cuts[49], 2),
        "p95": round(cuts[94], 2),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }


def start_workers(pool: str) -> list[subprocess.Popen]:
    procs = []
    for queue in QUEUES:
        cmd = [sys.executable, "-m", "celery", "-A", "voiceproj", "worker", "-Q", queue]
        cmd += ["-n", f"bench-{queue}-{uuid.uuid4().hex[:6]}@%h", "-P", pool, "-c", "1"]
        cmd += ["--without-gossip", "--without-mingle", "-l", "WARNING"]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL))
    replies: list = []
    deadline = time.monotonic() + 120
    while len(replies) < len(QUEUES) and time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0)
    return procs


def probe_results(client: redis.Redis, key: str, count: int) -> list[dict]:
    rows: list[dict] = []
    while len(rows) < count:
        popped = client.blpop([key], timeout=30)
        if popped is None:
            raise RuntimeError("the default worker did not run the probe")
        rows.append(json.loads(popped[1]))
    return rows


def bench_hops(client: redis.Redis, runs: int) -> tuple[list[float], list[float]]:
    key = f"bench:probe:{uuid.uuid4().hex}"
    idle = []
    for _ in range(runs):
        app.send_task("workers.housekeeping.probe", args=[key, time.time()])
        row = probe_results(client, key, 1)[0]
        idle.append((row["started"] - row["sent"]) * 1000)
        time.sleep(0.02)
    queued = []
    for _ in range(runs):
        for _ in range(2):
            app.send_task("workers.housekeeping.probe", args=[key, time.time(), 0.05])
        first, second = probe_results(client, key, 2)
        queued.append((second["started"] - first["ended"]) * 1000)
    return idle, queued


def bench_relay(runs: int) -> tuple[list[float], list[float]]:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)("bench.")
    relay = get_relay()
    relayed, per_message = [], []
    for _ in range(runs):
        started = time.perf_counter()
        relay.send(channel, {"type": "bench.ping"})
        relayed.append((time.perf_counter() - started) * 1000)
    for _ in range(runs):
        started = time.perf_counter()
        async_to_sync(layer.send)(channel, {"type": "bench.ping"})
        per_message.append((time.perf_counter() - started) * 1000)
    return relayed, per_message


def bench_text_turns(client: redis.Redis, runs: int) -> dict[str, list[float]]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    user = User.objects.create_user(name, f"{name}@example.com", uuid.uuid4().hex)
    agent = Agent.objects.create(owner=user, name="Bench agent")
    session = start_session(agent, user)
    agent_job = agent.pipeline_config()
    loop = asyncio.new_event_loop()
    layer = get_channel_layer()
    channel = loop.run_until_complete(layer.new_channel("bench-turn."))
    timings: dict[str, list[float]] = {"intent": [], "first_delta": [], "first_audio": []}
    try:
        for turn_id in range(1, runs + 1):
            client.set(turn_key(str(session.id)), turn_id)
            t0 = time.time()
            job = {"session_id": str(session.id), "channel_name": channel, "turn_id": turn_id}
            job.update(agent=agent_job, t0=t0)
            app.send_task(
                "workers.dialog.run_text_turn",
                args=[job],
                kwargs={"text": QUESTIONS[turn_id % len(QUESTIONS)]},
            )
            seen: dict[str, float] = {}
            while not {"first_audio", "reply_done"} <= seen.keys():
                message = loop.run_until_complete(asyncio.wait_for(layer.receive(channel), 120))
                if message["turn_id"] != turn_id:
                    continue  # the end of the previous turn's speech
                kind = message.get("event", {}).get("type") or message["type"]
                label = {
                    "intent": "intent",
                    "response.delta": "first_delta",
                    "pipeline.audio": "first_audio",
                    "pipeline.reply_done": "reply_done",
                }.get(kind)
                if label:
                    seen.setdefault(label, time.time())
            for label in timings:
                if label in seen:
                    timings[label].append((seen[label] - t0) * 1000)
            # Let the last sentences' speech finish before the next turn.
            time.sleep(3)
            client.set(turn_key(str(session.id)), turn_id + 1000)
            time.sleep(0.5)
    finally:
        loop.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="probes and sends per figure")
    parser.add_argument("--turns", type=int, default=5, help="text turns end to end")
    parser.add_argument("--pool", default="prefork", choices=["solo", "prefork", "threads"])
    args = parser.parse_args()

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(*QUEUES, "stt")
    workers = start_workers(args.pool)
    try:
        hop_idle, hop_queued = bench_hops(client, args.runs)
        relayed, per_message = bench_relay(args.runs)
        turns = bench_text_turns(client, args.turns)
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(timeout=30)

    figures = {
        "hop_idle_ms": summary(hop_idle),
        "hop_queued_ms": summary(hop_queued),
        "relay_ms": summary(relayed),
        "async_to_sync_ms": summary(per_message),
        **{f"text_turn_{k}_ms": summary(v) for k, v in turns.items() if v},
    }
    for name, stats in figures.items():
        print(
            f"{name:28} p50 {stats['p50']:8.2f}  p95 {stats['p95']:8.2f}  max {stats['max']:8.2f}"
        )
    result = {
        "bench": "pipeline",
        "when": datetime.now(UTC).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "broker_poll_s": app.conf.broker_transport_options.get("polling_interval"),
        "pool": args.pool,
        "figures": figures,
    }
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"pipeline-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
