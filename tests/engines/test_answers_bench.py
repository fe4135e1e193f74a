"""``python -m bench.answers`` on a tiny subset: the real responder engine, the JSON.

The operator's view: the command ends well and writes each reply with its
relevance, loop and echo marks, and their shares.
"""

from pathlib import Path

import pytest

from bench.answers import loops
from tests.bench_run import run_bench

pytestmark = pytest.mark.e2e

# Two models load, then two replies of up to 120 tokens on 2 shared cores.
BENCH_TIMEOUT_S = 180


def test_a_repeated_run_of_words_is_a_loop() -> None:
    assert loops("You are a helpful voice assistant. You are a helpful voice assistant.")
    assert not loops("We open at nine. We close at six on Saturdays.")


def test_bench_answers_writes_replies_and_their_marks(tmp_path: Path) -> None:
    path = tmp_path / "answers.json"
    result, _ = run_bench("bench.answers", ["--limit", "2"], path, BENCH_TIMEOUT_S)

    assert result["split"] == "test3" and result["replies"] == 2
    assert result["engine"]["repeat_penalty"] == 1.15
    assert all(row["reply"] for row in result["rows"])
    assert all(-1 <= row["relevance"] <= 1 for row in result["rows"])
    assert 0 <= result["loops"] <= 1 and 0 <= result["echo"] <= 1
    assert 0 < result["reply_ms"]["p50"] <= result["reply_ms"]["max"]
