"""``python -m bench.load`` end to end: its own stack, two spoken callers, the JSON.

The command starts a private redis-server, a fresh SQLite database, daphne and
one prefork worker per pipeline queue on the instant engines; two callers
speak the recorded question twice each over protocol v1 at real-time pace.
The test reads the JSON the command writes, as an operator would.
"""

from pathlib import Path

import pytest

from tests.bench_run import run_bench

pytestmark = pytest.mark.e2e

# Stack start (about 15 s on 2 shared cores) and two turns of about 15 s each
# (2.4 s of speech, the reply's 11 s of audio heard out); a generous ceiling.
BENCH_TIMEOUT_S = 240
PERCENTILES = ("p50", "p95", "p99")


def test_bench_load_reports_overhead_and_redis_round_trip(tmp_path: Path) -> None:
    args = ["--callers", "2", "--turns", "2"]
    result, printed = run_bench("bench.load", args, tmp_path / "load.json", BENCH_TIMEOUT_S)

    assert (result["callers"], result["turns_per_caller"], result["turns"]) == (2, 2, 4)
    assert (result["answered"], result["fallback"], result["lost_turns"]) == (4, 0, 0)
    assert result["lost_by_caller"] == {}
    for figure in ("overhead_ms", "first_audio_ms", "endpointing_ms", "redis_rtt_ms"):
        values = [result[figure][p] for p in PERCENTILES]
        assert all(v is not None and v > 0 for v in values), (figure, values)
        assert values == sorted(values), (figure, values)
    # The overhead is what is left of the caller's wait once the endpointing
    # is taken off. The caller's copy of the server's endpointer cannot end an
    # utterance before the silence it waits for went out, so the overhead can
    # never exceed the wait less that silence.
    silence = result["endpointing_silence_ms"]
    assert silence == 600
    assert result["endpointing_ms"]["p50"] >= silence
    assert result["first_audio_ms"]["p50"] > result["endpointing_ms"]["p50"]
    assert result["overhead_ms"]["p99"] <= result["first_audio_ms"]["p99"] - silence
    assert result["redis_rtt_ms"]["n"] > 0
    for hop in ("endpointing", "endpointing_lag", "stt", "classify", "tts", "server_first_audio"):
        assert result["hops_ms"][hop]["p50"] is not None, hop
    assert result["worker_ms"]["stt_ms"]["p50"] is not None
    assert len(result["machine"]["loadavg"]) == 3
    # daphne decoded 2 callers' real-time audio: it cannot have been idle.
    assert set(result["cpu_s"]) == {"web", "stt", "classify", "respond", "tts"}
    assert result["cpu_s"]["web"] > 0
    assert "2 callers x 2 turns: 4 answered, 0 fallback, 0 lost" in printed
