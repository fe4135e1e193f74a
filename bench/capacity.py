"""``python -m bench.load``: how many real-time spoken callers a stack carries, and
what the platform adds to each turn.

Usage::

    python -m bench.load --callers N --turns M [--web K] [--workers K]
                         [--database-url URL] [--json PATH]
    python -m bench.load --sweep --turns M [...]

Starts its own stack (``bench.stack``) with the instant engines: a private
redis-server (channel layer and broker), a fresh SQLite file unless
``--database-url`` names a migrated database, ``--web`` daphne processes and
one prefork worker per pipeline queue with ``--workers`` pool processes. The
stack runs as in production (``DEBUG`` off, a random ``SECRET_KEY``; plain
HTTP on loopback, as behind a proxy that ends TLS). Creates a user, an agent
and one session per caller through the REST API, then N callers at once speak
M turns each over protocol v1 (``bench.spoken``), caller ``n`` on daphne
``n mod K``; they connect spread over :data:`RAMP_S`.

Reports p50/p95/p99 of the orchestration overhead (end of speech → first
reply audio at the caller, less the endpointing the server's VAD needs of the
audio and the engine time the workers report), of end of speech → first
audio itself, of the endpointing, of each hop, of a
raw Redis round trip and of the callers' own event-loop lag, all taken in the
same run; and every turn's outcome. A lost turn is counted and listed, never
dropped. Writes JSON (default ``bench/results/load-<N>.json``, or
``load-sweep.json``) and exits 1 when a turn was lost; the stack's logs are
kept in that case.

``--sweep`` keeps one stack and raises N through :data:`SWEEP_CALLERS` until
the overhead's p95 passes :data:`SWEEP_P95_LIMIT_MS` (``--limit-ms``) or a
turn is lost; the capacity is the last N that stayed within both.
"""

import argparse
import asyncio
import logging
import os
import platform
import secrets
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench.load import Outcome, percentiles, provision
from bench.soak import commit, save_result
from bench.speech import SILENCE_ENDPOINTING, VAD_SILENCE_MS, Utterance, recorded_question
from bench.spoken import HOPS, WORKER_TIMINGS, SpokenCaller, SpokenTurn, with_probes
from bench.stack import INSTANT_ENGINES, ROOT, Stack, start_stack

# The callers of each sweep step; past the last one the sweep stops anyway.
SWEEP_CALLERS = (10, 25, 50, 100, 150, 200, 300, 400, 500)
# The sweep stops once the overhead's p95 passes this (design.md, "Operations");
# --limit-ms sets another, to find where a slower machine saturates.
SWEEP_P95_LIMIT_MS = 100.0
# Callers connect spread over this long: about one turn (2.4 s of speech, the
# endpointing, a reply of 11 s), so their turns do not all end in the same instant.
RAMP_S = 10.0
# The targets of a 50-caller run, reported as met or missed.
TARGETS = {"overhead_p50_ms": 15.0, "overhead_p95_ms": 40.0, "lost_turns": 0}
# What production runs with: DEBUG off (no query log, no debug pages). The bench
# speaks plain HTTP to loopback, as a proxy that ends TLS would, and its one
# made-up user has no mailbox to confirm its address from.
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECURE_SSL_REDIRECT": "false",
    "ACCOUNT_EMAIL_VERIFICATION": "none",
}


def production_env() -> dict[str, str]:
    """:data:`PRODUCTION_ENV` and a key made for this run (DEBUG off requires one)."""
    return {**PRODUCTION_ENV, "SECRET_KEY": secrets.token_urlsafe(50)}


async def spoken_load(
    stack: Stack, callers: int, turns: int, utterance: Utterance
) -> tuple[list[SpokenTurn], list[float], list[float]]:
    """``callers`` callers at once, ``turns`` turns each, with the probes beside
    them: every turn, the Redis round trips and the event-loop lags."""
    account = await asyncio.to_thread(provision, stack.server.url, callers)
    announcer = redis.Redis.from_url(stack.redis.url)
    servers = stack.servers
    people = [
        SpokenCaller(
            n,
            servers[n % len(servers)].ws_url(session["id"]),
            account.token,
            utterance,
            announcer,
            str(session["id"]),
        )
        for n, session in enumerate(account.sessions)
    ]

    async def arrive(caller: SpokenCaller) -> list[SpokenTurn]:
        # Callers arrive spread over RAMP_S, as calls do, not all in one instant.
        await asyncio.sleep(RAMP_S * caller.number / callers)
        return await caller.run(turns)

    async def talk() -> list[SpokenTurn]:
        runs = await asyncio.gather(*(arrive(caller) for caller in people))
        return [turn for run in runs for turn in run]

    try:
        return await with_probes(stack.redis.url, talk)
    finally:
        announcer.close()


def figures(turns: list[SpokenTurn], rtts: list[float], lags: list[float]) -> dict[str, Any]:
    """The figures of one run: outcomes, percentiles, lost turns by caller."""
    counts = {outcome.value: sum(t.outcome is outcome for t in turns) for outcome in Outcome}
    heard = [t for t in turns if t.outcome is not Outcome.LOST]

    def of(values: list[float | None]) -> dict[str, float | None]:
        return percentiles([v for v in values if v is not None])

    lost: dict[str, list[str]] = {}
    for turn in turns:
        if turn.outcome is Outcome.LOST:
            lost.setdefault(str(turn.caller), []).append(f"turn {turn.index + 1}: {turn.detail}")
    return {
        "answered": counts[Outcome.ANSWERED.value],
        "fallback": counts[Outcome.FALLBACK.value],
        "lost_turns": counts[Outcome.LOST.value],
        "overhead_ms": of([t.overhead_ms for t in heard]),
        "first_audio_ms": of([t.first_audio_ms for t in heard]),
        "endpointing_ms": of([t.endpointing_ms for t in heard]),
        "hops_ms": {hop: of([t.hops()[hop] for t in heard]) for hop in HOPS},
        "worker_ms": {
            name: of([None if (v := t.timings.get(name)) is None else float(v) for t in heard])
            for name in WORKER_TIMINGS
        },
        "redis_rtt_ms": {**percentiles(rtts), "n": len(rtts)},
        "client_loop_lag_ms": {**percentiles(lags), "n": len(lags)},
        "lost_by_caller": lost,
    }


def machine() -> dict[str, Any]:
    """What the figures were taken on, the load of the moment included."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def run_once(stack: Stack, callers: int, turns: int, utterance: Utterance) -> dict[str, Any]:
    """One run of ``callers`` × ``turns`` on ``stack``, as its JSON."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    cpu_before, started = stack.cpu_seconds(), time.monotonic()
    spoken, rtts, lags = asyncio.run(spoken_load(stack, callers, turns, utterance))
    seconds = time.monotonic() - started
    cpu = {name: used - cpu_before[name] for name, used in stack.cpu_seconds().items()}
    result = {
        "callers": callers,
        "turns_per_caller": turns,
        "turns": len(spoken),
        **figures(spoken, rtts, lags),
        "seconds": round(seconds, 1),
        # CPU time each part of the stack used during the run: unlike the
        # latencies, it hardly depends on what else the machine runs.
        "cpu_s": {name: round(used, 2) for name, used in cpu.items()},
        "web_cores_per_caller": round(cpu["web"] / seconds / callers, 4),
        "loadavg_before": load_before,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(line(result), flush=True)
    return result


def line(result: dict[str, Any]) -> str:
    """One run in a line: callers, outcomes, overhead and Redis percentiles."""
    over, rtt = result["overhead_ms"], result["redis_rtt_ms"]
    return (
        f"{result['callers']:>4} callers x {result['turns_per_caller']} turns: "
        f"{result['answered']} answered, {result['fallback']} fallback, "
        f"{result['lost_turns']} lost; overhead p50 {over['p50']} p95 {over['p95']} "
        f"p99 {over['p99']} ms; redis rtt p50 {rtt['p50']} p99 {rtt['p99']} ms; "
        f"daphne {result['cpu_s']['web'] / result['seconds']:.2f} cores; "
        f"load {result['loadavg_after'][0]}"
    )


def targets_met(result: dict[str, Any]) -> dict[str, bool]:
    """Each target of :data:`TARGETS`, met or not, by this run."""
    over = result["overhead_ms"]
    return {
        "overhead_p50_ms": over["p50"] is not None and over["p50"] <= TARGETS["overhead_p50_ms"],
        "overhead_p95_ms": over["p95"] is not None and over["p95"] <= TARGETS["overhead_p95_ms"],
        "lost_turns": result["lost_turns"] <= TARGETS["lost_turns"],
    }


def within_limit(result: dict[str, Any], limit_ms: float) -> bool:
    """A sweep step the stack carried: no turn lost, overhead p95 within ``limit_ms``."""
    p95 = result["overhead_ms"]["p95"]
    return result["lost_turns"] == 0 and p95 is not None and p95 <= limit_ms


def sweep(
    stack: Stack, turns: int, utterance: Utterance, web: int, limit_ms: float
) -> dict[str, Any]:
    """Raise the callers step by step until a step is past the limit."""
    steps: list[dict[str, Any]] = []
    for callers in SWEEP_CALLERS:
        steps.append(run_once(stack, callers, turns, utterance))
        if not within_limit(steps[-1], limit_ms):
            break
    carried = [step["callers"] for step in steps if within_limit(step, limit_ms)]
    capacity = max(carried, default=0)
    return {
        "sweep": steps,
        "capacity_callers": capacity,
        "capacity_per_web_process": capacity // web,
        "stopped_by": None if within_limit(steps[-1], limit_ms) else steps[-1]["callers"],
        "limit_overhead_p95_ms": limit_ms,
        # Turns lost at the step past the limit are that step's; the sweep's are all of them.
        "lost_turns": sum(step["lost_turns"] for step in steps),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--turns", type=int, default=3, help="turns per caller")
    parser.add_argument("--web", type=int, default=1, help="daphne processes")
    parser.add_argument("--workers", type=int, default=1, help="pool processes per queue")
    parser.add_argument("--sweep", action="store_true", help=f"callers {SWEEP_CALLERS}")
    parser.add_argument(
        "--limit-ms",
        type=float,
        default=SWEEP_P95_LIMIT_MS,
        help="the sweep's limit on the overhead's p95",
    )
    parser.add_argument(
        "--frame-ms",
        type=int,
        choices=(20, 40, 100),
        default=20,
        help="the callers' audio frames: 20 as Twilio, 40 as the web page, 100",
    )
    parser.add_argument("--database-url", help="a migrated database (default: a fresh SQLite)")
    parser.add_argument("--json", type=Path, help="default bench/results/load-<N|sweep>.json")
    args = parser.parse_args()

    utterance = replace(recorded_question(), v1_frame_ms=args.frame_ms)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    work_dir = Path(tempfile.mkdtemp(prefix="voice-load-"))
    try:
        with start_stack(
            work_dir,
            database_url=args.database_url,
            # Both go to every process of the stack, as engines=... does.
            engines={**INSTANT_ENGINES, **SILENCE_ENDPOINTING, **production_env()},
            web=args.web,
            concurrency=args.workers,
        ) as stack:
            database = stack.database_url.split(":", 1)[0]
            if args.sweep:
                result: dict[str, Any] = sweep(
                    stack, args.turns, utterance, args.web, args.limit_ms
                )
            else:
                result = run_once(stack, args.callers, args.turns, utterance)
                result["targets"] = TARGETS
                result["targets_met"] = targets_met(result)
    except BaseException:
        print(f"logs kept in {work_dir}", file=sys.stderr)
        raise

    result.update(
        engines="instant",
        web=args.web,
        workers_per_queue=args.workers,
        database=database,
        endpointing_silence_ms=VAD_SILENCE_MS,
        utterance_s=round(utterance.seconds, 2),
        frame_ms=args.frame_ms,
        ramp_s=RAMP_S,
        when=datetime.now(UTC).isoformat(timespec="seconds"),
        commit=commit(),
        machine=machine(),
    )
    name = "sweep" if args.sweep else str(args.callers)
    path = args.json or ROOT / "bench" / "results" / f"load-{name}.json"
    # A sweep ends at a step past the limit by design; it failed when it carried none.
    failed = result["capacity_callers"] == 0 if args.sweep else result["lost_turns"] > 0
    return save_result(result, path, work_dir, failed=failed)
