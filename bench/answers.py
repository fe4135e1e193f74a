"""Reply quality of the responder: on the question, without loops, without reciting its prompt.

Usage: ``python -m bench.answers [--split test3|test2|test|dev|tune] [--limit N] [--json PATH]``.

Each text of the split (``bench/spoken_set.py``), as typed, is the first turn
of a call to the configured LLM engine (``VOICE_LLM``; SmolLM2 by default)
with the default agent's responder prompt (``workers.respond.instructions``),
its responder temperature and the responder's token cap. Per reply:

* **relevance**: the cosine of the caller's text and the reply as MiniLM
  sentence embeddings (``workers.engines.sentence_encoder``), a proxy for
  "answers what was said" (an unrelated reply scores near 0.1, a reply
  about the same thing 0.4 and more);
* **loops**: the reply says a run of four words twice;
* **echo**: the reply recites its instructions or persona (:data:`ECHO`).

Printed and written as JSON (default ``bench/results/answers-<time>.json``)
with every reply. Settings are compared by environment, e.g.
``LLM_REPEAT_PENALTY=1.0``; a local engine's sampling is seeded, so the same
settings give the same replies.
"""

import argparse
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproj.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from agents.models import Agent  # noqa: E402
from bench.quality import summary  # noqa: E402
from bench.results import write_result  # noqa: E402
from bench.spoken_set import SPLITS  # noqa: E402
from voiceproj.pipeline import AgentConfig  # noqa: E402
from workers.engines import get_llm  # noqa: E402
from workers.engines.models import minilm_dir  # noqa: E402
from workers.engines.sentence_encoder import SentenceEncoder  # noqa: E402
from workers.respond import MAX_REPLY_TOKENS, instructions  # noqa: E402

# Words of the responder's prompt that a reply has no business saying: the
# default persona ("a helpful, friendly voice assistant") and the speaking
# instructions (workers.respond.SPEAKABLE_INSTRUCTIONS).
ECHO = re.compile(r"voice assistant|speaking with a caller|on the phone|markdown", re.IGNORECASE)
LOOP_WORDS = 4


def loops(reply: str) -> bool:
    """Whether ``reply`` says some run of :data:`LOOP_WORDS` words twice."""
    tokens = re.findall(r"[\w']+", reply.lower())
    runs = [tuple(tokens[i : i + LOOP_WORDS]) for i in range(len(tokens) - LOOP_WORDS + 1)]
    return len(runs) != len(set(runs))


def run(split: str, limit: int | None) -> dict[str, Any]:
    """Answer every text of ``split``; the replies and their figures as a JSON-able dict."""
    items = SPLITS[split][:limit] if limit else SPLITS[split]
    agent: AgentConfig = Agent(name="Answers bench").pipeline_config()
    llm, encoder = get_llm(), SentenceEncoder(minilm_dir())
    rows: list[dict[str, Any]] = []
    for text, intent in items:
        messages = [
            {"role": "system", "content": instructions(agent)},
            {"role": "user", "content": text},
        ]
        started = time.perf_counter()
        reply = "".join(
            llm.stream(
                messages, agent["responder_model"], agent["responder_temperature"], MAX_REPLY_TOKENS
            )
        ).strip()
        seconds = time.perf_counter() - started
        rows.append(
            {
                "text": text,
                "intent": intent,
                "reply": reply,
                "relevance": round(float(encoder.embed(text) @ encoder.embed(reply or ".")), 3),
                "loops": loops(reply),
                "echo": bool(ECHO.search(reply)),
                "words": len(reply.split()),
                "reply_s": round(seconds, 3),
            }
        )
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()[0]},
        "engine": {"llm": settings.VOICE_LLM, "repeat_penalty": settings.LLM_REPEAT_PENALTY},
        "split": split,
        "replies": len(rows),
        "relevance_mean": round(float(np.mean([r["relevance"] for r in rows])), 3),
        "loops": round(float(np.mean([r["loops"] for r in rows])), 3),
        "echo": round(float(np.mean([r["echo"] for r in rows])), 3),
        "words_p50": float(np.median([r["words"] for r in rows])),
        "reply_ms": summary([r["reply_s"] for r in rows]),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="test3")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = run(args.split, args.limit)
    for key, value in result.items():
        if key != "rows":
            print(f"{key:<16} {value}")
    write_result(result, args.json, "answers")


if __name__ == "__main__":
    main()
