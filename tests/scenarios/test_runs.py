"""Scenario runs through real workers: the instant engines classify by keyword
and always answer :data:`REPLY`; a farewell is answered with the farewell line
and ends the call. Runs are started over the stack's HTTP API (the task goes
to its ``default`` worker) or by ``manage.py run_scenarios`` in a process of
its own, both against the stack's Redis."""

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from calls.models import CallSession, Turn
from calls.scenarios.models import Scenario
from tests.pipeline.conftest import ROOT, Call, subprocess_env
from tests.pipeline.instant_stack import InstantStack
from voiceproj.pipeline import FAREWELL_LINE
from workers.engines.instant import REPLY

pytestmark = pytest.mark.e2e

PASSING = [
    {"say": "Hello there", "expect": {"intent": "greeting", "contains": "instant test engine"}},
    {"say": "When do you open?", "expect": {"intent": "question", "not_contains": "sorry"}},
    {"say": "Goodbye", "expect": {"intent": "farewell", "contains": "goodbye", "ends_call": True}},
]
# Seconds; a run takes about 3 on the instant engines, far more on a loaded 2-core box.
RUN_TIMEOUT_S = 120.0


def api(stack: InstantStack, call: Call, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {call.token}"}
    return httpx.request(method, f"{stack.server.url}/api{path}", headers=headers, **kwargs)


def run_to_the_end(stack: InstantStack, call: Call, scenario: Scenario) -> dict[str, Any]:
    """Start a run over the API and poll it until it passed or failed."""
    started = api(stack, call, "POST", f"/scenarios/{scenario.id}/run")
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = api(stack, call, "GET", f"/scenario-runs/{run_id}").json()
        if run["status"] in ("passed", "failed"):
            return run
        time.sleep(0.2)
    logs = "\n".join(f"--- {q}\n{stack.workers.log(q)[-1500:]}" for q in stack.workers.by_queue)
    pytest.fail(f"run {run_id} did not finish: {run}\n{logs}")


def test_a_run_that_holds_passes_turn_by_turn(
    scenario_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    call = make_call(greeting="Welcome!")
    scenario = Scenario.objects.create(agent=call.agent, name="Happy path", turns=PASSING)
    run = run_to_the_end(scenario_stack, call, scenario)
    assert run["status"] == "passed", run
    assert [(t["say"], t["intent"]) for t in run["turns"]] == [
        ("Hello there", "greeting"),
        ("When do you open?", "question"),
        ("Goodbye", "farewell"),
    ]
    assert run["turns"][0]["reply"] == REPLY
    assert run["turns"][2]["reply"] == FAREWELL_LINE
    assert all(t["ms"] is not None and t["ms"] >= 0 for t in run["turns"])
    assert [c["name"] for c in run["turns"][2]["checks"]] == ["intent", "contains", "ends_call"]
    # The run was a real call: its transcript is kept, the greeting was not played.
    session = CallSession.objects.get(pk=run["session_id"])
    assert (session.channel, session.status) == ("scenario", "ended")
    assert list(
        Turn.objects.filter(session=session, speaker="user").values_list("text", flat=True)
    ) == ["Hello there", "When do you open?", "Goodbye"]
    assert not Turn.objects.filter(session=session, text="Welcome!").exists()


def test_a_run_fails_on_the_expectation_the_agent_broke(
    scenario_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    call = make_call()
    turns = [
        {"say": "When do you open?", "expect": {"contains": "nine o'clock"}},
        {"say": "Hello", "expect": {"intent": "question", "tool": "lookup_hours"}},
        {"say": "Goodbye", "expect": {"ends_call": False}},
        {"say": "Are you still there?", "expect": {}},
    ]
    scenario = Scenario.objects.create(agent=call.agent, name="Broken", turns=turns)
    run = run_to_the_end(scenario_stack, call, scenario)
    assert run["status"] == "failed"
    failed = [
        [(c["name"], c["detail"]) for c in turn["checks"] if not c["ok"]] for turn in run["turns"]
    ]
    assert failed == [
        [("contains", 'the reply lacks "nine o\'clock"')],
        [
            ("intent", "expected intent 'question', got 'greeting'"),
            ("tool", "expected tool 'lookup_hours', the agent called no tool"),
        ],
        [("ends_call", "the agent ended the call")],
        [("reached", "the call had ended before this line")],
    ]


def test_a_tool_expectation_holds_when_the_agent_calls_that_tool(
    scenario_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    call = make_call(tools=[{"name": "end_call"}])
    turns = [{"say": "Please end call now", "expect": {"tool": "end_call", "ends_call": True}}]
    scenario = Scenario.objects.create(agent=call.agent, name="Hangs up", turns=turns)
    run = run_to_the_end(scenario_stack, call, scenario)
    assert run["status"] == "passed", run
    assert run["turns"][0]["reply"] == FAREWELL_LINE


def test_the_command_prints_the_runs_and_fails_on_a_failure(
    scenario_stack: InstantStack, make_call: Callable[..., Call]
) -> None:
    call = make_call()
    Scenario.objects.create(agent=call.agent, name="Greets", turns=PASSING[:1])
    command = [sys.executable, "manage.py", "run_scenarios", "--agent", str(call.agent.id)]
    env = subprocess_env(
        REDIS_URL=scenario_stack.redis_url, CELERY_BROKER_URL=scenario_stack.redis_url
    )

    def run_command() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    passing = run_command()
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Greets" in passing.stdout and "passed" in passing.stdout
    Scenario.objects.create(
        agent=call.agent,
        name="Wants nine",
        turns=[{"say": "When do you open?", "expect": {"contains": "nine"}}],
    )
    failing = run_command()
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "turn 1 contains: the reply lacks 'nine'" in failing.stdout
    assert "1 passed, 1 failed" in failing.stdout
