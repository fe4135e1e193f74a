"""``python -m bench.quality`` on a tiny subset: real voices, real STT and classifier, the JSON.

The operator's view: the command ends well and writes accuracy, WER and the
classifier's latency with and without a responder generating beside it; with
``--calls``, what each clip's caller heard through a real stack.
"""

from pathlib import Path

import pytest

from bench.quality import words
from tests.bench_run import run_bench

pytestmark = pytest.mark.e2e

# Three models load in two processes, then 3 clips go through; on 2 shared cores.
BENCH_TIMEOUT_S = 300


def test_bench_quality_writes_accuracy_wer_and_latency(tmp_path: Path) -> None:
    args = ["--limit", "3", "--agent-examples", "--compare-hints"]
    result, _ = run_bench("bench.quality", args, tmp_path / "quality.json", BENCH_TIMEOUT_S)

    assert result["split"] == "test3" and result["utterances"] == 3
    # Three clips, three voices: the held-out set's first greetings.
    assert [r["expected"] for r in result["rows"]] == ["greeting"] * 3
    assert len({r["voice"] for r in result["rows"]}) == 3
    assert all(r["transcript"] for r in result["rows"])
    assert 0 <= result["intent_accuracy"] <= 1 and 0 <= result["wer"] <= 1
    assert result["wer_without_hints"] is not None
    assert "Quality bench" in result["stt_hints"]
    for phase in ("alone", "with_responder"):
        latency = result["classify_ms"][phase]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["max"]


def test_bench_quality_calls_times_what_the_caller_hears(tmp_path: Path) -> None:
    """Each clip paused in its middle (``--pause-ms``), as a caller stops to think."""
    # The dev split's first two texts have five words each, so both get the pause.
    args = ["--calls", "--split", "dev", "--limit", "2", "--pause-ms", "300"]
    result, _ = run_bench("bench.quality", args, tmp_path / "quality-calls.json", BENCH_TIMEOUT_S)

    calls = result["calls"]
    assert result["pause_ms"] == 300
    assert calls["missed"] == 0 and calls["first_audio_ms"]["n"] == 2
    # Every figure starts at the end of speech: the endpointing (600 ms of
    # silence and webrtcvad's hang-over) comes before the intent and the audio.
    assert 600 <= calls["endpointing_ms"]["p50"] < calls["intent_ms"]["p50"]
    assert calls["endpointing_ms"]["p50"] < calls["first_audio_ms"]["p50"]
    # As the server ended the utterance: never before the shorter silence of a
    # complete thought, and before the intent.
    assert 400 <= calls["stopped_ms"]["p50"] < calls["intent_ms"]["p50"]
    assert calls["classify_ms"]["n"] == 2
    for row in result["rows"]:
        assert row["transcript"] and row["reply"] and row["intent"]
        # The pause did not end the turn: one transcript holds both halves.
        assert len(words(row["transcript"])) >= len(words(row["text"])) - 1, row
        # The hops in the order a turn makes them; nothing is said or spoken
        # before the route is known.
        hops = ("stopped_ms", "transcript_ms", "intent_ms", "delta_ms", "first_audio_ms")
        at = [row[hop] for hop in hops]
        assert at == sorted(at), dict(zip(hops, at, strict=True))
    assert 0 <= result["intent_accuracy"] <= 1 and 0 <= result["wer"] <= 1
