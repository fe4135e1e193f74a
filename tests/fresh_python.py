"""What a fresh interpreter prints: for values a process computes once, at
import (settings, environment defaults), checked with the environment a
deployment would have."""

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def printed(code: str, unset: Iterable[str] = (), **env: str) -> str:
    """The stripped output of ``python -c code`` in the repository, with this
    process's environment less ``unset``, plus ``env``."""
    dropped = set(unset)
    environment = {key: value for key, value in os.environ.items() if key not in dropped}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()
