"""``make run``'s supervision: supervisord with the real supervisord.conf and real processes.

A process killed with SIGKILL (what the kernel's OOM killer sends) is started
again under a new pid while every other process keeps its own: a call on daphne
stays up while the tts worker is dead and coming back, and a killed daphne
comes back and takes new calls. Stopping supervisord (Ctrl-C or SIGTERM of
``make run``) stops every process it started.

The stack runs against the test database and the session's Redis, with its own
ports and its own supervisord socket and pidfile (RUN_DIR), so it never meets
a ``make run`` of the same checkout.
"""

import asyncio
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import BIN, ROOT, Call, free_port, subprocess_env
from .wire import next_event, open_socket, send_json

pytestmark = pytest.mark.e2e

# The supervised web process's readiness view needs it (voiceproj/monitoring.py).
MONITORING_TOKEN = "supervision-test-monitoring-token"

CONFIG = ROOT / "supervisord.conf"
PROGRAMS = {"web", "stt", "classify", "respond", "tts", "default", "beat", "flower"}
# On a busy 2-core box daphne needs a few seconds to import Django while five
# workers load their models beside it; a ceiling, not a pause.
WEB_READY_S = 45.0
# supervisord notices a death within its one-second tick and starts the
# program again at once.
RESTART_S = 10.0
# A worker answers broadcasts once its pool process has loaded the model (Piper: ~2 s).
WORKER_BACK_S = 30.0
# supervisord stops the programs of its one group together, each within its
# stopwaitsecs (10 s) before SIGKILL.
SHUTDOWN_S = 20.0


def process_tree(root: int) -> set[int]:
    """``root`` and every process descended from it, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue  # exited while we read
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(children.get(pid, ()))
    return tree


def wait_until(condition: Callable[[], object], timeout: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@dataclass
class Supervised:
    """A running supervisord with the project's supervisord.conf."""

    process: subprocess.Popen
    env: dict[str, str]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, session_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/voice/{session_id}/"

    def pids(self) -> dict[str, int | None]:
        """Each program's pid while it is RUNNING, else None (``supervisorctl status``)."""
        status = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(CONFIG), "status"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        pids: dict[str, int | None] = {}
        for line in status.splitlines():  # "voice:tts   RUNNING   pid 4242, uptime 0:00:09"
            name, _, rest = line.removeprefix("voice:").partition(" ")
            if name in PROGRAMS:
                fields = rest.split()
                pids[name] = int(fields[2].rstrip(",")) if fields[0] == "RUNNING" else None
        return pids

    def wait(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        """Wait until ``condition`` holds; fail with supervisord's output if it does not."""

        def exited() -> bool:
            return self.process.poll() is not None

        if not wait_until(lambda: condition() or exited(), timeout) or exited():
            log = self.log_path.read_text(errors="replace")[-5000:]
            raise AssertionError(f"not {what} within {timeout} s; supervisord's output:\n{log}")

    def health(self) -> dict | None:
        """The readiness view (database, Redis, workers per queue), or None."""
        try:
            return httpx.get(
                f"{self.url}/api/health/ready",
                headers={"Authorization": f"Bearer {MONITORING_TOKEN}"},
                timeout=3,
            ).json()
        except httpx.HTTPError:
            return None

    def restarted(self, name: str, old_pid: int) -> int:
        """Wait until ``name`` runs again under a new pid; the new pid."""
        self.wait(
            lambda: self.pids().get(name) not in (None, old_pid), RESTART_S, f"{name} restarted"
        )
        new_pid = self.pids()[name]
        assert new_pid is not None
        return new_pid


@pytest.fixture
def supervised(django_db_setup: None) -> Iterator[Supervised]:
    """supervisord running every program of supervisord.conf; stopped with SIGTERM after."""
    with tempfile.TemporaryDirectory(prefix="voice-sv-") as run_dir:
        port = free_port()
        env = subprocess_env(
            PORT=str(port),
            FLOWER_PORT=str(free_port()),
            RUN_DIR=run_dir,
            MONITORING_TOKEN=MONITORING_TOKEN,
        )
        log_path = Path(run_dir) / "supervisord.log"
        process = subprocess.Popen(
            [str(BIN / "supervisord"), "-c", str(CONFIG)],
            cwd=ROOT,
            env=env,
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        stack = Supervised(process=process, env=env, port=port, log_path=log_path)
        try:
            yield stack
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=SHUTDOWN_S + 10)


async def ping(ws) -> None:
    await send_json(ws, type="ping")
    assert (await next_event(ws)) == {"type": "pong"}


def test_killed_processes_come_back_and_the_others_never_notice(
    supervised: Supervised, make_call: Callable[..., Call]
) -> None:
    supervised.wait(supervised.health, WEB_READY_S, "/api/health/ready answered")
    supervised.wait(lambda: None not in supervised.pids().values(), RESTART_S, "all running")
    before = supervised.pids()
    assert set(before) == PROGRAMS

    # The tts worker dies; a call on daphne goes on while it is dead and coming back.
    call = make_call()

    def tts_workers() -> int:
        health = supervised.health()
        return health["queues"]["tts"]["workers"] if health else 0

    async def call_through_a_tts_crash() -> int:
        async with await open_socket(supervised.ws_url(call.session_id), token=call.token) as ws:
            await next_event(ws, "ready")
            await ping(ws)
            os.kill(before["tts"], signal.SIGKILL)
            await ping(ws)
            new_pid = await asyncio.to_thread(supervised.restarted, "tts", before["tts"])
            await asyncio.to_thread(supervised.wait, tts_workers, WORKER_BACK_S, "tts answers")
            await ping(ws)
            return new_pid

    tts_pid = asyncio.run(call_through_a_tts_crash())
    assert supervised.pids() == {**before, "tts": tts_pid}

    # daphne dies; it comes back and takes a new call; no worker noticed.
    os.kill(before["web"], signal.SIGKILL)
    web_pid = supervised.restarted("web", before["web"])
    supervised.wait(supervised.health, WEB_READY_S, "/api/health/ready answered again")
    assert supervised.pids() == {**before, "tts": tts_pid, "web": web_pid}
    next_call = make_call()

    async def a_new_call() -> None:
        async with await open_socket(
            supervised.ws_url(next_call.session_id), token=next_call.token
        ) as ws:
            await next_event(ws, "ready")
            await ping(ws)

    asyncio.run(a_new_call())

    # Stopping supervisord stops everything it started, pool processes included.
    started = process_tree(supervised.process.pid)
    assert len(started) > len(PROGRAMS) + 1  # the workers' pool processes are in it
    supervised.process.send_signal(signal.SIGTERM)
    supervised.process.wait(timeout=SHUTDOWN_S)
    assert wait_until(lambda: not any(alive(pid) for pid in started), 5), [
        pid for pid in started if alive(pid)
    ]
