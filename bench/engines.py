"""Latency of the local engines on this machine.

Usage: ``python bench/engines.py [--runs N]``. Prints, with p50/p90/max over
the runs: STT real-time factor (processing time / audio duration), LLM time to
first token and tokens per second, TTS time to first chunk and real-time
factor, and intent accuracy on ``bench/intents.py``. Writes the figures as
JSON under ``bench/results/`` (git-ignored).
"""

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from statistics import quantiles
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproj.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from agents.models import DEFAULT_INTENTS  # noqa: E402
from bench.intents import LABELLED  # noqa: E402
from workers.audio import duration_s  # noqa: E402
from workers.engines.llamacpp_llm import LlamaCppLLM  # noqa: E402
from workers.engines.models import piper_voice_dir, smollm2_gguf, whisper_model_dir  # noqa: E402
from workers.engines.piper_tts import DEFAULT_VOICE, PiperTTS  # noqa: E402
from workers.engines.whisper_stt import WhisperSTT  # noqa: E402

SENTENCES = [
    "Hello, I would like to book a table for two people tonight.",
    "Can you tell me when the pharmacy on Main Street closes on Sundays?",
    "Thanks, that is all I needed. Goodbye.",
]
SYSTEM = {"role": "system", "content": "You are a helpful, friendly voice assistant."}
# A different question per run: llama.cpp reuses the KV cache of a repeated
# prompt, which would make time to first token look near zero.
QUESTIONS = [
    "Explain in three sentences how to make a cup of tea.",
    "Give me three tips for sleeping better.",
    "Describe a sunny beach in three sentences.",
    "How do I reset a forgotten email password? Answer briefly.",
    "Tell me a short story about a lost umbrella.",
]


def summary(values: list[float]) -> dict[str, float]:
    if len(values) == 1:
        return {"p50": values[0], "p90": values[0], "max": values[0]}
    cuts = quantiles(values, n=10, method="inclusive")
    return {"p50": round(cuts[4], 4), "p90": round(cuts[8], 4), "max": round(max(values), 4)}


def first_and_total(chunks: Iterator[Any]) -> tuple[float, float, list[Any]]:
    """Seconds to the first item, seconds to the end, and the items."""
    started = time.perf_counter()
    items: list[Any] = []
    first = 0.0
    for item in chunks:
        if not items:
            first = time.perf_counter() - started
        items.append(item)
    return first, time.perf_counter() - started, items


def timed(load: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    engine = load()
    return engine, time.perf_counter() - started


def bench_tts(tts: PiperTTS, runs: int) -> tuple[dict[str, Any], list[bytes]]:
    first_chunk, rtf, clips = [], [], []
    for run in range(runs):
        for sentence in SENTENCES:
            first, total, chunks = first_and_total(tts.stream(sentence, DEFAULT_VOICE))
            audio = b"".join(chunks)
            first_chunk.append(first)
            rtf.append(total / duration_s(audio, tts.sample_rate))
            if run == 0:
                clips.append(audio)
    return {"first_chunk_s": summary(first_chunk), "rtf": summary(rtf)}, clips


def bench_stt(stt: WhisperSTT, clips: list[bytes], rate: int, runs: int) -> dict[str, Any]:
    rtf = []
    for _ in range(runs):
        for clip in clips:
            started = time.perf_counter()
            stt.transcribe(clip, rate, "en")
            rtf.append((time.perf_counter() - started) / duration_s(clip, rate))
    return {"rtf": summary(rtf)}


def bench_llm(llm: LlamaCppLLM, runs: int) -> dict[str, Any]:
    ttft, tps = [], []
    for run in range(runs):
        messages = [SYSTEM, {"role": "user", "content": QUESTIONS[run % len(QUESTIONS)]}]
        first, total, deltas = first_and_total(llm.stream(messages, "local", 0.7, 96))
        ttft.append(first)
        # llama.cpp streams one token per delta.
        tps.append((len(deltas) - 1) / (total - first) if len(deltas) > 1 else 0.0)
    classify_s, right = [], 0
    for text, expected in LABELLED:
        started = time.perf_counter()
        right += llm.classify(text, DEFAULT_INTENTS, "local", 0.0) == expected
        classify_s.append(time.perf_counter() - started)
    return {
        "first_token_s": summary(ttft),
        "tokens_per_s": summary(tps),
        "classify_s": summary(classify_s),
        "intent_accuracy": round(right / len(LABELLED), 3),
        "intent_examples": len(LABELLED),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    tts = PiperTTS([piper_voice_dir()])
    _, tts_load = timed(lambda: tts.voice(DEFAULT_VOICE))  # Piper loads a voice on first use
    stt, stt_load = timed(lambda: WhisperSTT(str(whisper_model_dir())))
    llm, llm_load = timed(
        lambda: LlamaCppLLM(smollm2_gguf(), repeat_penalty=settings.LLM_REPEAT_PENALTY)
    )

    tts_result, clips = bench_tts(tts, runs)
    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": runs,
        "tts": {"load_s": round(tts_load, 3), **tts_result},
        "stt": {"load_s": round(stt_load, 3), **bench_stt(stt, clips, tts.sample_rate, runs)},
        "llm": {"load_s": round(llm_load, 3), **bench_llm(llm, runs)},
    }
    for stage in ("stt", "llm", "tts"):
        for name, value in results[stage].items():
            print(f"{stage:4} {name:16} {value}")
    out = ROOT / "bench" / "results" / f"engines-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
