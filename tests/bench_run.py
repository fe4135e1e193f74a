"""Runs a ``bench`` command as an operator does and reads the JSON it writes."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.stack import ROOT


def run_bench(
    module: str, args: list[str], json_path: Path, timeout_s: int
) -> tuple[dict[str, Any], str]:
    """``python -m <module> <args> --json <json_path>``, which must end well.

    Returns its JSON and what it printed.
    """
    done = subprocess.run(
        [sys.executable, "-m", module, *args, "--json", str(json_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(json_path.read_text())
    return result, done.stdout
