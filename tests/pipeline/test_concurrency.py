"""Twenty callers at once, three typed turns each, with nothing lost: on the
``make run`` defaults (a fresh SQLite file) and on PostgreSQL.

A whole stack of real processes (``bench.stack``): a private redis-server, so
the session's default-engine workers never see these turns; daphne; one
prefork worker per pipeline queue with the instant engines, so the turns cost
next to nothing and the platform itself (queues, channel layer, consumer,
database writes) is what is under load. Users, agents and sessions are made
through the stack's own REST API and the callers (``bench.load``) talk over
real WebSockets, so both databases go through exactly the same path.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from bench.load import Outcome, lost_by_caller, provision, run_callers, tally
from bench.stack import INSTANT_ENGINES, start_stack

from .conftest import test_database_url as served_test_database_url

pytestmark = pytest.mark.e2e

CALLERS = 20
TURNS = 3


@pytest.fixture(
    params=[
        "sqlite",
        # The mark makes pytest-django create the test database (and flush the
        # stack's rows afterwards); it sets up only databases a test asks for.
        pytest.param("postgresql", marks=pytest.mark.django_db(transaction=True)),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str | None:
    """``None`` for a fresh SQLite file the stack migrates (what ``make run``
    serves by default); the URL of pytest-django's test database otherwise."""
    if request.param == "sqlite":
        return None
    if connection.vendor != "postgresql":
        pytest.skip("the session's DATABASE_URL is not PostgreSQL")
    return served_test_database_url()


def test_twenty_callers_lose_no_turn(database_url: str | None, tmp_path: Path) -> None:
    with start_stack(tmp_path, database_url=database_url, engines=INSTANT_ENGINES) as stack:
        account = provision(stack.server.url, CALLERS)
        # In a thread of its own: pytest-django runs tests without a database
        # last, after the browser tests, whose session-wide Playwright keeps an
        # event loop running in the main thread (asyncio.run refuses to nest).
        with ThreadPoolExecutor(max_workers=1) as pool:
            results = pool.submit(asyncio.run, run_callers(account, turns=TURNS)).result()
        saved = {session["id"]: account.turns(session["id"]) for session in account.sessions}

    figures = tally(results)
    latency = figures["latency_ms"]
    print(
        f"\n{CALLERS} callers x {TURNS} turns on {stack.database_url.split(':')[0]}: "
        f"{figures['turns']} turns, {figures['answered']} answered, "
        f"{figures['fallback']} fallback, {figures['lost']} lost; text sent -> response.done "
        f"p50 {latency['p50']} ms, p95 {latency['p95']} ms (logs: {tmp_path})"
    )
    assert lost_by_caller(results) == {}, f"lost turns by caller; logs in {tmp_path}"
    fallbacks = [
        (r.caller, r.index + 1, r.errors, r.reply) for r in results if r.outcome is Outcome.FALLBACK
    ]
    assert fallbacks == [], f"turns answered by the fallback; logs in {tmp_path}"
    assert len(results) == CALLERS * TURNS

    for caller, session in enumerate(account.sessions):
        mine = [r for r in results if r.caller == caller]
        turns = saved[session["id"]]
        user = [t for t in turns if t["speaker"] == "user"]
        agent = [t for t in turns if t["speaker"] == "agent"]
        assert [t["text"] for t in user] == [r.text for r in mine], caller
        assert [t["text"] for t in agent] == [r.reply for r in mine], caller
        turn_ids = [r.turn_id for r in mine]
        assert len(set(turn_ids)) == TURNS, caller
        assert [t["turn_id"] for t in user] == [t["turn_id"] for t in agent] == turn_ids, caller
        assert not any(t["interrupted"] for t in turns), caller
