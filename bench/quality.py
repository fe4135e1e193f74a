"""Spoken quality of the local pipeline: intent accuracy, WER and classifier latency.

Usage: ``python -m bench.quality [--split test3|test2|test|dev|tune] [--limit N] [--json PATH]``;
``--pause-ms N`` puts a pause of N ms in the middle of every clip (a caller
who stops to think); levers: ``--agent-examples`` (the agent gets 5
examples per intent from the tuning split), ``--compare-hints`` (every clip
also transcribed without the agent's STT hints), ``--beam N`` /
``--stt-threads N`` (faster-whisper), ``--responder-niceness N`` (0: the
concurrent responder runs at the classifier's priority),
``--no-concurrent``; ``--calls``: every clip is a real call through the
whole pipeline instead (``bench.quality_calls``).

Builds a labelled spoken set: every text below is synthesized by one of several
voices (the Piper voice the platform speaks with, at different speeds and
noise settings, and espeak-ng voices in other accents when ``espeak-ng`` is
installed; without it the set uses the Piper variants only and the JSON says
so). Each clip then goes through the engines as the workers call them: the
STT engine through ``workers.stt.hear`` and the classifier through
``workers.classify.label``, with a default agent (``agents.models.Agent``'s
defaults: its intents and examples). Printed and written as JSON (default
``bench/results/quality-<time>.json``):

* intent accuracy on the spoken set (and on the typed texts, which shows what
  the STT costs), with the confusions;
* WER of the transcripts against the texts (lower-cased, punctuation dropped,
  digits up to twelve spelled out);
* classifier latency p50/p95, alone and while a responder generation runs in
  a process of its own, as the respond worker's speculative reply does on the
  same box, at the respond worker's lowered priority
  (``workers.respond.yield_cpu``);
* with ``--calls``, what the caller lives: end of speech → first reply audio
  and → the ``intent`` event, p50/p95, and the reply's wait for the intent
  (``classify_ms``) while the respond worker's speculative reply generates.

Piper's noise is random, so the audio, and with it WER, differs a little from
run to run; compare STT settings within one run (``--compare-hints``).

**Splits** (``bench/spoken_set.py``): ``test`` (the default; 72 utterances,
12 per intent, 6 voices) is held out: written blind after the classifier was
frozen, never used to tune prompts, descriptions, references or examples.
``dev`` (66, the held-out set until 2026-12-07) and ``tune`` (the embedding
classifier's references, each scored left out of them) are where those are
tuned.
Texts and labels are committed; no audio is.
"""

import argparse
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from statistics import quantiles
from typing import Any, cast

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproj.settings")

import django  # noqa: E402

django.setup()

from agents.models import EXAMPLES_PER_INTENT_MAX, Agent  # noqa: E402
from bench.quality_calls import run_calls  # noqa: E402
from bench.results import write_result  # noqa: E402
from bench.spoken_set import SPLITS  # noqa: E402
from voiceproj.pipeline import AgentConfig  # noqa: E402
from workers.audio import read_wav, resample  # noqa: E402
from workers.classify import label  # noqa: E402
from workers.engines import get_classifier, get_llm, get_stt, get_tts  # noqa: E402
from workers.engines.intent_embedding import EmbeddingClassifier, built_in_references  # noqa: E402
from workers.engines.piper_tts import DEFAULT_VOICE, SAMPLE_RATE  # noqa: E402
from workers.engines.references import REFERENCES  # noqa: E402
from workers.respond import MAX_REPLY_TOKENS, RESPONDER_NICENESS, yield_cpu  # noqa: E402
from workers.stt import hear, stt_hints  # noqa: E402


@dataclass(frozen=True)
class Voice:
    """One way of saying a text: a Piper synthesis setting or an espeak-ng voice."""

    name: str
    engine: str  # "piper" or "espeak-ng"
    settings: tuple[tuple[str, Any], ...]


VOICES = [
    Voice("piper", "piper", ()),
    Voice(
        "piper-fast",
        "piper",
        (("length_scale", 0.8), ("noise_scale", 0.9), ("noise_w_scale", 1.0)),
    ),
    Voice(
        "piper-slow",
        "piper",
        (("length_scale", 1.3), ("noise_scale", 0.4), ("noise_w_scale", 0.5)),
    ),
    Voice("espeak-us-f", "espeak-ng", (("-v", "en-us+f3"), ("-s", "160"))),
    Voice("espeak-gb", "espeak-ng", (("-v", "en-gb"), ("-s", "175"))),
    Voice("espeak-scot-fast", "espeak-ng", (("-v", "en-gb-scotland+m3"), ("-s", "200"))),
]
# Who speaks the responder's part while the classifier is timed (as in bench/engines.py).
RESPONDER_QUESTIONS = [
    "Explain in three sentences how to make a cup of tea.",
    "Give me three tips for sleeping better.",
    "Describe a sunny beach in three sentences.",
]
CALLER_RATE = 16000  # protocol v1's default input rate: what the STT worker gets
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six"]
NUMBERS += ["seven", "eight", "nine", "ten", "eleven", "twelve"]


def voices_available() -> list[Voice]:
    """All voices, less the espeak-ng ones when the program is not installed."""
    has_espeak = shutil.which("espeak-ng") is not None
    return [v for v in VOICES if v.engine == "piper" or has_espeak]


def synthesize(text: str, voice: Voice) -> bytes:
    """``text`` spoken by ``voice``, as PCM16 16 kHz (what a browser caller sends)."""
    if voice.engine == "piper":
        from piper import SynthesisConfig

        piper_voice = get_tts().voice(DEFAULT_VOICE)  # type: ignore[attr-defined]
        chunks = piper_voice.synthesize(text, syn_config=SynthesisConfig(**dict(voice.settings)))
        pcm = b"".join(c.audio_int16_bytes for c in chunks)
        return resample(pcm, SAMPLE_RATE, CALLER_RATE)
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        args = [a for pair in voice.settings for a in pair]
        subprocess.run(["espeak-ng", *args, "-w", wav.name, text], check=True)
        pcm, rate = read_wav(wav.name)
    return resample(pcm, rate, CALLER_RATE)


# Below this (of 32767) a sample is the silence around a synthesized half.
SILENT_AMPLITUDE = 300
# Kept either side of the speech when the silence is cut: the tail of a word.
TRIM_MARGIN_MS = 30


def synthesize_with_pause(text: str, voice: Voice, pause_ms: int) -> bytes:
    """``text`` spoken in two halves with ``pause_ms`` of silence between, as a
    caller who stops mid-sentence to think; texts under four words stay whole."""
    tokens = text.split()
    if pause_ms <= 0 or len(tokens) < 4:
        return synthesize(text, voice)
    half = len(tokens) // 2
    first = speech_span(synthesize(" ".join(tokens[:half]), voice), keep_start=True)
    second = speech_span(synthesize(" ".join(tokens[half:]), voice), keep_start=False)
    return first + bytes(CALLER_RATE * pause_ms // 1000 * 2) + second


def speech_span(pcm: bytes, keep_start: bool) -> bytes:
    """``pcm`` without its silence after the speech (``keep_start``) or before it."""
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    loud = np.flatnonzero(samples > SILENT_AMPLITUDE)
    if not len(loud):
        return pcm
    margin = CALLER_RATE * TRIM_MARGIN_MS // 1000
    if keep_start:
        return pcm[: (min(len(pcm) // 2, loud[-1] + margin)) * 2]
    return pcm[max(0, loud[0] - margin) * 2 :]


def words(text: str) -> list[str]:
    """``text`` as the words WER counts: lower case, no punctuation, small numbers spelled."""
    tokens = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    return [NUMBERS[int(t)] if t.isdigit() and int(t) < len(NUMBERS) else t for t in tokens]


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions turning ``reference`` into ``hypothesis``."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


def summary(values: list[float]) -> dict[str, float]:
    """p50/p95/max in milliseconds."""
    ms = [v * 1000 for v in values]
    if len(ms) == 1:
        return {"p50": round(ms[0], 1), "p95": round(ms[0], 1), "max": round(ms[0], 1)}
    cuts = quantiles(ms, n=20, method="inclusive")
    return {"p50": round(cuts[9], 1), "p95": round(cuts[18], 1), "max": round(max(ms), 1)}


def responder(ready: Event, go: Event, stop: Event, niceness: int) -> None:
    """Generate replies back to back, as the respond worker's speculative reply does.

    A process of its own with its own model, as the respond worker is; it
    loads the model first so that loading is not what the classifier meets,
    and lowers its priority by ``niceness`` as the respond worker's thread does.
    """
    yield_cpu(niceness)
    llm = get_llm()
    llm.classify("warm up", [{"name": "a"}, {"name": "b"}], "local", 0.0)
    ready.set()
    go.wait()
    turn = 0
    while not stop.is_set():
        question = RESPONDER_QUESTIONS[turn % len(RESPONDER_QUESTIONS)]
        messages = [
            {"role": "system", "content": "You are a helpful, friendly voice assistant."},
            {"role": "user", "content": f"{question} ({turn})"},  # no KV-cache shortcut
        ]
        for _ in llm.stream(messages, "local", 0.7, MAX_REPLY_TOKENS):
            if stop.is_set():
                break
        turn += 1


def time_labels(
    agent: AgentConfig, texts: list[str], left_out: Sequence[str] = ()
) -> tuple[list[str], list[float]]:
    """Each text's intent and how long the classifier took for it.

    ``left_out``: per text, the utterance it was made from, taken out of the
    built-in references the embedding classifier compares it with
    (``without_text``).
    """
    labels, seconds = [], []
    for index, text in enumerate(texts):
        asked = without_text(agent, left_out[index]) if left_out else agent
        started = time.perf_counter()
        labels.append(label(asked, text))
        seconds.append(time.perf_counter() - started)
    return labels, seconds


def without_text(agent: AgentConfig, text: str) -> AgentConfig:
    """The agent with its built-in references less ``text``, as its own examples.

    The tuning split is the embedding classifier's references: scored with
    them, every text would find itself. Left out, it is scored as a caller's
    new words would be (leave-one-out).
    """
    examples = {
        intent: [t for t in built_in_references(intent) if t != text] for intent in REFERENCES
    }
    return cast(AgentConfig, {**agent, "examples": examples})


def tuning_examples() -> dict[str, list[str]]:
    """Five utterances per intent from the tuning split, as an operator would write them."""
    return {intent: list(texts[-EXAMPLES_PER_INTENT_MAX:]) for intent, texts in REFERENCES.items()}


def run(
    split: str,
    limit: int | None,
    concurrent: bool,
    niceness: int,
    examples: dict[str, list[str]],
    compare_hints: bool,
    calls: bool = False,
    pause_ms: int = 0,
) -> dict[str, Any]:
    """Synthesize, transcribe and classify the split; the results as a JSON-able dict.

    With ``calls`` each clip is a call to a stack of its own (``bench.quality_calls``)
    instead of a call to the engines in this process; ``pause_ms``: each
    clip of four words or more has a pause that long in its middle.
    """
    items = SPLITS[split][:limit] if limit else SPLITS[split]
    voices = voices_available()
    context = multiprocessing.get_context("fork")  # before this process loads any model
    ready, go, stop = context.Event(), context.Event(), context.Event()
    helper = context.Process(target=responder, args=(ready, go, stop, niceness), daemon=True)
    if concurrent and not calls:
        helper.start()
    agent = cast(AgentConfig, Agent(name="Quality bench", examples=examples).pipeline_config())
    rows: list[dict[str, Any]] = []
    clips: list[bytes] = []
    for index, (text, expected) in enumerate(items):
        voice = voices[index % len(voices)]
        clips.append(synthesize_with_pause(text, voice, pause_ms))
        rows.append({"text": text, "expected": expected, "voice": voice.name})
    measured: dict[str, Any] = {}
    if calls:
        measured["calls"] = run_calls(rows, clips)
    else:
        for row, pcm in zip(rows, clips, strict=True):
            started = time.perf_counter()
            row["audio_s"] = round(len(pcm) / 2 / CALLER_RATE, 2)
            row["transcript"] = hear(agent, pcm, CALLER_RATE, tag=None).text
            row["stt_ms"] = round((time.perf_counter() - started) * 1000)
            if compare_hints:  # the same audio without the agent's vocabulary
                row["transcript_without_hints"] = get_stt().transcribe(pcm, CALLER_RATE).text
    label(agent, "warm up")  # the first call per intent set computes its calibration
    # Only where the references are the classifier's: the LLM's prompt shows
    # two examples per intent, never the tuning split's texts.
    embedding = isinstance(get_classifier(), EmbeddingClassifier)
    leave_out = split == "tune" and not examples and embedding
    left_out = [r["text"] for r in rows] if leave_out else []
    typed, _ = time_labels(agent, [r["text"] for r in rows], left_out)
    for row, typed_label in zip(rows, typed, strict=True):
        row["typed_intent"] = typed_label
    if not calls:
        spoken, alone = time_labels(agent, [r["transcript"] for r in rows], left_out)
        for row, spoken_label in zip(rows, spoken, strict=True):
            row["intent"] = spoken_label
        measured["classify_ms"] = {"alone": summary(alone)}
        measured["stt_ms"] = summary([r["stt_ms"] / 1000 for r in rows])
    if concurrent and not calls:
        ready.wait(timeout=120)
        go.set()
        time.sleep(0.5)  # the responder is generating before the first label
        _, busy = time_labels(agent, [r["transcript"] for r in rows], left_out)
        stop.set()
        helper.join(timeout=30)
        measured["classify_ms"]["with_responder"] = summary(busy)
    reference_words = sum(len(words(r["text"])) for r in rows)

    def wer(key: str) -> float:
        errors = sum(word_errors(words(r["text"]), words(r[key])) for r in rows)
        return round(errors / reference_words, 3)

    by_voice: dict[str, list[bool]] = {}
    for row in rows:
        by_voice.setdefault(row["voice"], []).append(row["intent"] == row["expected"])
    wrong = [r for r in rows if r["intent"] != r["expected"]]
    return {
        "split": split,
        "pause_ms": pause_ms,
        "utterances": len(rows),
        "voices": [v.name for v in voices],
        "espeak_ng": any(v.engine == "espeak-ng" for v in voices),
        "intent_accuracy": round(1 - len(wrong) / len(rows), 3),
        "typed_intent_accuracy": round(
            sum(r["typed_intent"] == r["expected"] for r in rows) / len(rows), 3
        ),
        "wer": wer("transcript"),
        "wer_without_hints": wer("transcript_without_hints") if compare_hints else None,
        "stt_hints": stt_hints(agent),
        "accuracy_by_voice": {v: round(sum(ok) / len(ok), 3) for v, ok in by_voice.items()},
        "confusions": dict(Counter(f"{r['expected']}->{r['intent']}" for r in wrong)),
        **measured,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="test3")
    parser.add_argument("--limit", type=int, help="only the first N utterances (a smoke test)")
    parser.add_argument("--no-concurrent", dest="concurrent", action="store_false")
    parser.add_argument(
        "--responder-niceness",
        type=int,
        default=RESPONDER_NICENESS,
        help="how much nicer the concurrent responder runs (0: as the classifier)",
    )
    parser.add_argument(
        "--agent-examples",
        action="store_true",
        help="give the agent 5 examples per intent from the tuning split (classifier and STT)",
    )
    parser.add_argument(
        "--compare-hints",
        action="store_true",
        help="also transcribe every clip without the agent's STT hints (WER both ways)",
    )
    parser.add_argument(
        "--calls",
        action="store_true",
        help="one real call per clip through a stack of its own (first audio, intent latency)",
    )
    parser.add_argument(
        "--pause-ms",
        type=int,
        default=0,
        help="a pause this long in the middle of every clip of four words or more",
    )
    parser.add_argument("--beam", type=int, help="faster-whisper beam size (STT_BEAM_SIZE)")
    parser.add_argument("--stt-threads", type=int, help="faster-whisper threads (ENGINE_THREADS)")
    parser.add_argument("--json", type=Path, help="where to write the results")
    args = parser.parse_args()
    if args.calls and args.compare_hints:
        parser.error("--compare-hints transcribes in this process; it does not go with --calls")
    from django.conf import settings

    # Read when the STT engine is built, on first use below; the stack's
    # workers (--calls) read them from the environment they inherit.
    if args.beam:
        settings.STT_BEAM_SIZE = args.beam
        os.environ["STT_BEAM_SIZE"] = str(args.beam)
    if args.stt_threads:
        settings.ENGINE_THREADS = args.stt_threads
        os.environ["ENGINE_THREADS"] = str(args.stt_threads)

    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": os.getloadavg()[0],
        },
        "engines": {
            "stt": settings.VOICE_STT,
            "llm": settings.VOICE_LLM,
            "engine_threads": settings.ENGINE_THREADS,
            "llm_threads": settings.LLM_THREADS,
            "stt_beam_size": settings.STT_BEAM_SIZE,
            "stt_model": settings.STT_MODEL or "bundled",
        },
        "responder_niceness": args.responder_niceness,
        **run(
            args.split,
            args.limit,
            args.concurrent,
            args.responder_niceness,
            tuning_examples() if args.agent_examples else {},
            args.compare_hints,
            args.calls,
            args.pause_ms,
        ),
    }
    results["machine"]["loadavg_after"] = os.getloadavg()[0]
    for key in (
        "utterances",
        "intent_accuracy",
        "typed_intent_accuracy",
        "wer",
        "wer_without_hints",
    ):
        print(f"{key:22} {results[key]}")
    for key in ("calls", "classify_ms", "stt_ms", "accuracy_by_voice", "confusions"):
        if key in results:
            print(f"{key:22} {results[key]}")
    write_result(results, args.json, "quality")


if __name__ == "__main__":
    main()
