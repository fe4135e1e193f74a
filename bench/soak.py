"""Soak: N callers for M minutes while a worker's pool process is killed every K seconds.

Usage::

    python -m bench.soak --callers 10 --minutes 2 --kill-every 15 [--engines instant|local]
                         [--database-url URL] [--think S] [--json PATH]

Starts its own stack (``bench.stack``: a private redis-server, a fresh SQLite
file migrated as ``make run`` does unless ``--database-url`` names another
database, daphne and one prefork worker per pipeline queue), creates a user,
an agent and one session per caller through the REST API, and has every
caller take typed turns back to back until the time is up (``bench.load``:
the next turn goes as soon as the reply's ``metrics`` arrived, barging in on
its playback; ``--listen`` hears each reply out first; then ``--think``
seconds). Every K seconds the pool
process of a random classify, respond or tts worker is SIGKILLed, as the
kernel's OOM killer would; its prefork parent replaces it.

Each turn is answered (the agent's reply), answered by the fallback line
(the turn failed and the caller was told), or lost (no ``response.done`` within
60 s). Prints a table, writes JSON (default ``bench/results/soak-<engines>.json``)
and exits 1 when a turn was lost; the stack's logs are kept in that case.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.load import Account, TurnResult, lost_by_caller, provision, run_callers, tally
from bench.stack import INSTANT_ENGINES, ROOT, Stack, start_stack

ENGINES: dict[str, dict[str, str]] = {"instant": INSTANT_ENGINES, "local": {}}
# The workers a typed turn goes through. STT is not one of them: killing its
# pool would cost no turn and only dilute the count of kills that matter.
KILLED_QUEUES = ("classify", "respond", "tts")


async def kill_workers(stack: Stack, every_s: float, until: float) -> list[dict[str, Any]]:
    """SIGKILL a random worker's pool process every ``every_s`` until monotonic ``until``."""
    started = time.monotonic()
    kills: list[dict[str, Any]] = []
    while (wake := started + (len(kills) + 1) * every_s) < until:
        await asyncio.sleep(wake - time.monotonic())
        queue = random.choice(KILLED_QUEUES)
        pids = await asyncio.to_thread(stack.workers[queue].kill_pool)
        kills.append({"at_s": round(time.monotonic() - started, 1), "queue": queue, "pids": pids})
    return kills


async def soak(
    stack: Stack,
    account: Account,
    minutes: float,
    kill_every_s: float,
    listen: bool,
    think_s: float,
) -> tuple[list[TurnResult], list[dict[str, Any]]]:
    """The callers and the killer, side by side; every turn's result and every kill."""
    until = time.monotonic() + minutes * 60
    results, kills = await asyncio.gather(
        run_callers(account, until=until, listen=listen, think_s=think_s),
        kill_workers(stack, kill_every_s, until),
    )
    return results, kills


def commit() -> str:
    """The checked-out commit, ``+dirty`` when the tree has changes: what was measured."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def report(figures: dict[str, Any], lost: dict[int, list[str]]) -> None:
    """Print the soak's table (and every lost turn, by caller)."""
    by_queue = ", ".join(f"{q} {n}" for q, n in sorted(figures["kills_by_queue"].items()))
    print(
        f"\nsoak: {figures['callers']} callers for {figures['minutes']} min on "
        f"{figures['engines']} engines and {figures['database']}, a pool process "
        f"SIGKILLed every {figures['kill_every_s']} s ({figures['kills']} kills: {by_queue})"
    )
    print(f"{'turns':>8} {'answered':>9} {'fallback':>9} {'lost':>6}")
    print(
        f"{figures['turns']:>8} {figures['answered']:>9} "
        f"{figures['fallback']:>9} {figures['lost']:>6}"
    )
    latency = figures["latency_ms"]
    print(
        f"text sent -> response.done: p50 {latency['p50']} ms, "
        f"p95 {latency['p95']} ms, p99 {latency['p99']} ms"
    )
    for caller, turns in sorted(lost.items()):
        print(f"LOST caller {caller}: " + "; ".join(turns))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--kill-every", type=float, default=15.0, help="seconds between kills")
    parser.add_argument("--engines", choices=sorted(ENGINES), default="instant")
    parser.add_argument("--database-url", help="a migrated database (default: a fresh SQLite)")
    parser.add_argument("--listen", action="store_true", help="hear each reply out first")
    parser.add_argument("--think", type=float, default=0.0, help="seconds between turns")
    parser.add_argument("--json", type=Path, help="default bench/results/soak-<engines>.json")
    args = parser.parse_args()

    work_dir = Path(tempfile.mkdtemp(prefix="voice-soak-"))
    try:
        with start_stack(work_dir, args.database_url, ENGINES[args.engines]) as stack:
            account = provision(stack.server.url, args.callers)
            results, kills = asyncio.run(
                soak(stack, account, args.minutes, args.kill_every, args.listen, args.think)
            )
            database = stack.database_url.split(":", 1)[0]
    except BaseException:
        print(f"logs kept in {work_dir}", file=sys.stderr)
        raise

    lost = lost_by_caller(results)
    figures = {
        "callers": args.callers,
        "minutes": args.minutes,
        "kill_every_s": args.kill_every,
        "listen": args.listen,
        "kills": len(kills),
        **tally(results),
        "engines": args.engines,
        "database": database,
        "kills_by_queue": dict(Counter(kill["queue"] for kill in kills)),
        "kill_log": kills,
        "lost_by_caller": lost,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    report(figures, lost)
    path = args.json or ROOT / "bench" / "results" / f"soak-{args.engines}.json"
    return save_result(figures, path, work_dir, failed=bool(lost))


def save_result(result: dict, path: Path, work_dir: Path, failed: bool) -> int:
    """Write the run's JSON; keep the stack's logs of a failed run. The exit code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    if failed:
        print(f"logs kept in {work_dir}")
        return 1
    shutil.rmtree(work_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
