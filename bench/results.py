"""Where a benchmark's JSON goes: the path asked for, else ``bench/results/<name>-<time>.json``."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_result(result: dict[str, Any], path: Path | None, name: str) -> None:
    """Write ``result`` as JSON to ``path``, else timestamped under bench/results; say where."""
    out = path or RESULTS_DIR / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
