"""Every stage scales by adding processes: two daphne processes and two workers
per pipeline queue, against one Redis and one database, with nothing lost,
doubled or reordered; and what an operator sees of such a stack: one turn's
JSON log lines in every process share its ids, and the workers send the task
events Flower shows.

The stack is ``instant_stack``'s (instant engines, a Redis database of its
own) with two replicas of everything, all logging JSON lines
(``LOG_FORMAT=json``). The callers are the load test's (``bench.load``): set up
through the REST API, they talk protocol v1 over real WebSockets, half of them
to each daphne. Half the callers speak their lines (the instant STT hears what
the caller announced), so the stt queue works too; the others type them.

Who did the work is read from the processes' own JSON log lines: the web
process logs each turn it delivered, a worker each turn task it ran, both
with the call's session id and the turn id (voiceproj/logcontext.py).
"""

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import redis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench.load import Account, Caller, Outcome, TurnResult, provision, questions
from bench.stack import NO_QUOTAS, PIPELINE_QUEUES
from calls.models import Turn
from voiceproj.celery import app as celery_app
from voiceproj.pipeline import CLASSIFY_TASK, SYNTHESIZE_TASK, TEXT_TURN_TASK
from workers.audio import SAMPLE_WIDTH, read_wav
from workers.engines.instant import announce

from .conftest import LiveServer
from .instant_stack import InstantStack, start_instant_stack
from .wire import stream_realtime

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REPLICAS = 2
# Four callers on each daphne, two of them speaking: on the instant engines a
# turn costs the workers next to nothing, and the round trip is dominated by
# the caller hearing the reply out (about 12 s of audio), so two turns each.
# That makes 8 stt tasks, 16 of classify and respond, 48 of tts: Redis hands
# them to whichever worker of the queue waits, near enough in alternation.
CALLERS = 8
TURNS = 2
QUESTION_WAV = Path(__file__).resolve().parents[1] / "data" / "question_16k.wav"
# After a caller's last reply, a doubled response.done would come within this.
DRAIN_S = 1.0
# Workers send a heartbeat event every 2 s; task events follow their task at once.
EVENTS_TIMEOUT_S = 15.0


def json_lines(log: str) -> list[dict[str, Any]]:
    """The JSON log records of a process's output (daphne prints a few plain lines)."""
    records = []
    for line in log.splitlines():
        with suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


class CallerSocket:
    """A caller's socket that counts every ``response.done`` by turn id, late
    ones included, and, for a speaking caller, says each typed line aloud:
    announced to the instant STT, then streamed as speech at real-time pace."""

    def __init__(
        self, ws: ClientConnection, done: Counter[int], speak: Callable[[str], None] | None
    ) -> None:
        self.ws = ws
        self.done = done
        self.speak = speak

    async def send(self, message: str) -> None:
        data = json.loads(message)
        if self.speak is None or data["type"] != "text":
            await self.ws.send(message)
            return
        self.speak(data["text"])
        speech, rate = read_wav(QUESTION_WAV)
        silence = bytes(rate * SAMPLE_WIDTH // 2)  # half a second
        await stream_realtime(self.ws, silence + speech + silence + silence, rate)

    async def recv(self) -> str | bytes:
        message = await self.ws.recv()
        if isinstance(message, str):
            data = json.loads(message)
            if data["type"] == "response.done":
                self.done[data["turn_id"]] += 1
        return message

    async def close(self) -> None:
        with suppress(TimeoutError, ConnectionClosed):
            async with asyncio.timeout(DRAIN_S):
                while True:
                    await self.recv()
        await self.ws.close()


class CountingCaller(Caller):
    """A :class:`bench.load.Caller` whose socket is a :class:`CallerSocket`."""

    def __init__(
        self,
        number: int,
        ws_url: str,
        token: str,
        speak: Callable[[str], None] | None,
        listen: bool = True,
    ) -> None:
        super().__init__(number, ws_url, token, listen=listen)
        self.done: Counter[int] = Counter()
        self.speak = speak

    async def _socket(self) -> ClientConnection:
        ws = await super()._socket()
        if not isinstance(ws, CallerSocket):
            # Duck-typed: the caller only sends, receives and closes.
            self._ws = ws = CallerSocket(ws, self.done, self.speak)  # type: ignore[assignment]
        return ws


@pytest.fixture(scope="module")
def scaled_stack(
    live_server_factory: Callable[..., LiveServer], live_log_dir: Path
) -> Iterator[InstantStack]:
    """Two daphne processes and two workers per pipeline queue, one Redis, one database."""
    with start_instant_stack(
        live_server_factory,
        live_log_dir,
        PIPELINE_QUEUES,
        tag="-scale",
        replicas=REPLICAS,
        LOG_FORMAT="json",
        **NO_QUOTAS,  # one account plays every caller
    ) as stack:
        yield stack


def in_own_loop(coroutine: Any) -> None:
    """Run ``coroutine`` in a thread of its own, as test_concurrency does: a
    session-wide event loop of the browser tests may be running in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def typed_turn(server: LiveServer, account: Account) -> TurnResult:
    """One typed turn on the account's first session, through ``server``; the
    caller hangs up without hearing the reply out (no turn follows it)."""
    session_id = account.sessions[0]["id"]
    url = server.ws_url(session_id)
    caller = CountingCaller(0, url, account.token, speak=None, listen=False)
    in_own_loop(caller.run(islice(questions(0), 1)))
    [result] = caller.results
    assert result.outcome is Outcome.ANSWERED, (result.errors, result.detail)
    return result


def run_callers(stack: InstantStack, account: Account) -> list[CountingCaller]:
    """Caller ``n`` talks to daphne ``n % 2``; callers 0, 1, 4, 5 … speak, the others type."""
    client = redis.Redis.from_url(stack.redis_url)

    def speaker(session_id: str) -> Callable[[str], None]:
        return lambda text: announce(client, session_id, text)

    callers = []
    for number, session in enumerate(account.sessions):
        server = stack.servers[number % REPLICAS]
        speaks = (number // REPLICAS) % 2 == 0
        speak = speaker(session["id"]) if speaks else None
        callers.append(CountingCaller(number, server.ws_url(session["id"]), account.token, speak))

    async def all_at_once() -> None:
        await asyncio.gather(*(c.run(islice(questions(c.number), TURNS)) for c in callers))

    try:
        in_own_loop(all_at_once())
    finally:
        client.close()
    return callers


def test_two_of_every_process_answer_every_turn_once_and_in_order(
    scaled_stack: InstantStack,
) -> None:
    stack = scaled_stack
    account = provision(stack.servers[0].url, CALLERS)
    callers = run_callers(stack, account)
    results: list[TurnResult] = [r for caller in callers for r in caller.results]
    where = f"logs in {stack.servers[0].log_path.parent}"

    outcomes = Counter(r.outcome for r in results)
    assert outcomes == {Outcome.ANSWERED: CALLERS * TURNS}, (
        [(r.caller, r.index, r.outcome, r.errors, r.detail) for r in results],
        where,
    )
    for caller, session in zip(callers, account.sessions, strict=True):
        turn_ids = [r.turn_id for r in caller.results if r.turn_id is not None]
        assert len(turn_ids) == TURNS, caller.number
        assert turn_ids == sorted(set(turn_ids)), (caller.number, turn_ids)  # in order
        assert caller.done == dict.fromkeys(turn_ids, 1), (caller.number, caller.done)

        saved = Turn.objects.filter(session_id=session["id"]).order_by("index")
        rows = list(saved.values_list("turn_id", "speaker", "text", "interrupted"))
        expected = []
        for result in caller.results:
            expected.append((result.turn_id, Turn.Speaker.USER, result.text, False))
            expected.append((result.turn_id, Turn.Speaker.AGENT, result.reply, False))
        assert rows == expected, caller.number

    # Each daphne delivered the turns of its own callers, and only those.
    for replica, server in enumerate(stack.servers):
        delivered = {
            (record["session_id"], record["turn_id"])
            for record in json_lines(server.log())
            if "delivered" in record["message"]
        }
        mine = {
            (account.sessions[r.caller]["id"], r.turn_id)
            for r in results
            if r.caller % REPLICAS == replica
        }
        assert delivered == mine, (replica, where)

    # Both workers of each queue ran turn tasks, and together every turn's.
    turns = {(account.sessions[r.caller]["id"], r.turn_id) for r in results}
    spoken = {(account.sessions[r.caller]["id"], r.turn_id) for r in results if r.caller % 4 < 2}
    for queue in PIPELINE_QUEUES:
        ran = [
            {
                (record["session_id"], record["turn_id"])
                for record in json_lines(workers.log(queue))
                if " ran for " in record["message"]
            }
            for workers in stack.worker_sets
        ]
        assert all(ran), (queue, [len(r) for r in ran], where)
        assert set().union(*ran) == (spoken if queue == "stt" else turns), (queue, where)


def test_a_turns_log_lines_carry_its_ids_in_the_web_process_and_the_workers(
    scaled_stack: InstantStack,
) -> None:
    server = scaled_stack.servers[1]
    account = provision(server.url, 1)
    result = typed_turn(server, account)
    ids = {"session_id": account.sessions[0]["id"], "turn_id": result.turn_id}

    def of_the_turn(log: str) -> list[dict[str, Any]]:
        return [r for r in json_lines(log) if {k: r.get(k) for k in ids} == ids]

    web = [r["message"] for r in of_the_turn(server.log())]
    assert any("sent to" in message for message in web), web
    assert any("delivered" in message for message in web), web
    # A typed turn runs on respond, classify and tts; which replica took each
    # stage is Redis's choice.
    for queue in ("respond", "classify", "tts"):
        lines = [r for w in scaled_stack.worker_sets for r in of_the_turn(w.log(queue))]
        assert any(" ran for " in r["message"] for r in lines), queue
        assert {r["levelname"] for r in lines} <= {"INFO", "WARNING"}, lines


class EventLog:
    """Celery events captured from the broker by a thread, as Flower captures them."""

    def __init__(self, broker_url: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._connection = celery_app.connection_for_read(broker_url)
        handlers = {"*": self.events.append}
        self._receiver = celery_app.events.Receiver(self._connection, handlers=handlers)
        self._thread = threading.Thread(target=self._receiver.capture, kwargs={"wakeup": False})

    def __enter__(self) -> "EventLog":
        self._thread.start()
        # Redis delivers events only to a subscribed receiver: a worker's
        # heartbeat arriving shows this one is.
        self.wait_for(lambda: any(e["type"] == "worker-heartbeat" for e in self.events))
        return self

    def __exit__(self, *exc: object) -> None:
        self._receiver.should_stop = True
        self._thread.join()
        self._connection.release()

    def wait_for(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + EVENTS_TIMEOUT_S
        while not condition():
            assert time.monotonic() < deadline, [e["type"] for e in self.events]
            time.sleep(0.1)


def test_workers_send_the_task_events_flower_shows(scaled_stack: InstantStack) -> None:
    server = scaled_stack.servers[0]
    account = provision(server.url, 1)
    session_id = account.sessions[0]["id"]
    with EventLog(scaled_stack.redis_url) as log:
        typed_turn(server, account)

        def tasks_of_the_turn() -> dict[str, dict[str, str]]:
            """Each task of this turn: its name and, by event type, who sent that event."""
            sent = {
                e["uuid"]: e["name"]
                for e in log.events
                if e["type"] == "task-sent" and session_id in e["args"]
            }
            tasks: dict[str, dict[str, str]] = {uuid: {"name": name} for uuid, name in sent.items()}
            for event in log.events:
                if event.get("uuid") in tasks:
                    tasks[event["uuid"]][event["type"]] = event["hostname"]
            return tasks

        def all_succeeded() -> bool:
            tasks = tasks_of_the_turn().values()
            return bool(tasks) and all("task-succeeded" in task for task in tasks)

        log.wait_for(all_succeeded)

    tasks = tasks_of_the_turn()
    assert {task["name"] for task in tasks.values()} == {
        TEXT_TURN_TASK,
        CLASSIFY_TASK,
        SYNTHESIZE_TASK,
    }
    queue_of = {TEXT_TURN_TASK: "respond", CLASSIFY_TASK: "classify", SYNTHESIZE_TASK: "tts"}
    for task in tasks.values():
        # Received, run and finished by one worker of the task's own queue
        # (bench.stack names a worker ``<queue>-<id>@<host>``).
        worker = task["task-received"]
        assert worker.startswith(f"{queue_of[task['name']]}-"), task
        assert task["task-started"] == task["task-succeeded"] == worker, task
