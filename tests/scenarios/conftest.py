"""A stack for scenario runs: daphne and real workers on the instant engines.

The workers serve classify, respond, tts (the typed text path) and default
(where ``POST /api/scenarios/{sid}/run`` sends the run) on a Redis database
of their own (tests/pipeline/instant_stack.py). Requests that must reach those
workers go through the stack's daphne, whose broker is that database.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.pipeline.conftest import (  # noqa: F401  (fixtures of the live processes)
    LiveServer,
    live_log_dir,
    live_server_factory,
    make_call,
)
from tests.pipeline.instant_stack import InstantStack, start_instant_stack

QUEUES = ("classify", "respond", "tts", "default")


# Per module, not per session: the other instant stacks (tests/pipeline) use
# the same Redis database, and workers of two live stacks would take each
# other's jobs; a module's stack stops before the next module's starts.
@pytest.fixture(scope="module")
def scenario_stack(
    live_server_factory: Callable[..., LiveServer],  # noqa: F811
    live_log_dir: Path,  # noqa: F811
) -> Iterator[InstantStack]:
    with start_instant_stack(live_server_factory, live_log_dir, QUEUES, tag="-scenarios") as stack:
        yield stack
