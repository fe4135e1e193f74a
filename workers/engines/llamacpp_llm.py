"""Local LLM: one GGUF model through llama.cpp (``llama-cpp-python``) on the CPU.

Consumes chat messages (responder, with the agent's tools when it has some)
or a caller's text plus the agent's intents (classifier); produces text
deltas, a tool call (chosen by a JSON-schema constrained completion) or one
intent name. The process serves the
one GGUF from ``LLM_MODEL_PATH`` (default: bundled SmolLM2-135M-Instruct)
whatever Ollama tag an agent names, so agents work unchanged offline.
"""

import atexit
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np
from llama_cpp import CreateChatCompletionStreamResponse, Llama

from workers.engines.base import EngineError, Message, ToolCall, ToolSpec
from workers.engines.prompts import (
    Examples,
    classification_prompt,
    intent_examples,
    intent_names,
    tool_arguments_prompt,
    tool_choice_prompt,
    tool_choice_schema,
)

logger = logging.getLogger(__name__)

# 2048 tokens hold a system prompt, ten turns of history and a reply.
N_CTX = 2048
# Intent is decided by the start of an utterance; 200 tokens keep a
# classification well under a second whatever the caller sends.
MAX_TEXT_TOKENS = 200
# Tokens a chat template adds around each message (role markers, newlines).
TEMPLATE_TOKENS = 8
# Content-free inputs for calibration; their mean score is each label's prior.
CONTENT_FREE = ("N/A", "")
# The catch-all intent gets this much (nats) back after calibration: content-free
# text is exactly what the catch-all describes, so subtracting its prior
# penalizes it twice. Tuned on bench/quality.py's tuning split: 1.5 → 53/60
# right, 0 → 46/60, 2.5 → 43/60 (held-out figures in docs/engines.md).
CATCH_ALL = "other"
# Description lengths tried, longest first, when a prompt does not fit the context.
DESCRIPTION_CAPS = (10_000, 120, 40, 0)
CATCH_ALL_BONUS = 1.5
# Intent sets whose calibration is kept (two forward passes each to redo).
MAX_CACHED_PRIORS = 64
# A tool choice is one short JSON object; this bounds a runaway one.
TOOL_CHOICE_MAX_TOKENS = 160


class LlamaCppLLM:
    provider = "local"

    def __init__(self, model_path: Path, threads: int = 2, *, repeat_penalty: float = 1.0) -> None:
        if not model_path.is_file():
            raise EngineError(
                "llm", self.provider, "unknown_model", f"GGUF file {model_path} does not exist."
            )
        try:
            self._llm = Llama(str(model_path), n_ctx=N_CTX, n_threads=threads, verbose=False)
        except ValueError as exc:
            raise EngineError(
                "llm", self.provider, "unknown_model", f"Cannot load {model_path}: {exc}"
            ) from exc
        # Free the model before interpreter teardown; llama-cpp-python's own
        # __del__ runs too late and prints a traceback at every exit.
        atexit.register(self._llm.close)
        # Replies only: a label or a tool choice is one decision, not prose.
        self._repeat_penalty = repeat_penalty
        # A llama.cpp context is single-threaded state (KV cache, logits).
        self._lock = threading.Lock()
        # Calibration priors per intent set, most recently used last; bounded,
        # since every agent edit makes a new set and a worker lives for weeks.
        self._priors: OrderedDict[tuple[object, ...], dict[str, float]] = OrderedDict()

    def stream(
        self, messages: Sequence[Message], model: str, temperature: float, max_tokens: int
    ) -> Iterator[str]:
        max_tokens = max(1, min(max_tokens, N_CTX // 2))
        with self._lock:
            try:
                chunks = cast(
                    Iterator[CreateChatCompletionStreamResponse],
                    self._llm.create_chat_completion(
                        messages=self._fit(messages, N_CTX - max_tokens),  # type: ignore[arg-type]
                        temperature=temperature,
                        max_tokens=max_tokens,
                        repeat_penalty=self._repeat_penalty,
                        stream=True,
                    ),
                )
                for chunk in chunks:
                    content = chunk["choices"][0]["delta"].get("content")
                    if isinstance(content, str) and content:
                        yield content
            except (RuntimeError, ValueError) as exc:  # llama.cpp decode / context errors
                raise EngineError("llm", self.provider, "failed", f"llama.cpp: {exc}") from exc

    def stream_or_call(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        model: str,
        temperature: float,
        max_tokens: int,
    ) -> Iterator[str | ToolCall]:
        """A tool call when the constrained choice names a tool, else :meth:`stream`.

        llama.cpp has no native tool calling for an arbitrary GGUF's chat
        template, so the choice is a separate completion whose grammar (from
        :func:`tool_choice_schema`) only admits a known tool or ``"none"``,
        then one for the arguments under the tool's own schema.
        """
        call = self._choose_tool(messages, tools)
        if call is not None:
            yield call
            return
        yield from self.stream(messages, model, temperature, max_tokens)

    def _choose_tool(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ToolCall | None:
        """Two short constrained completions: which tool (or none), then its arguments.

        Asking for the name alone first, then for the arguments under the
        chosen tool's own schema, works better with a small model than one
        object holding both (SmolLM2-135M filled order numbers right when asked
        for the arguments alone, and wrote placeholders in the joint form).
        """
        # The caller's last words: history would crowd a small context window,
        # and the choice is about this turn.
        last = [m for m in messages if m.get("role") == "user"][-1:]
        choice = self._constrained_json(tool_choice_prompt(tools), last, tool_choice_schema(tools))
        tool = next((t for t in tools if t["name"] == choice.get("tool")), None)
        if tool is None:
            return None  # {"tool": "none"}: answer in words
        arguments = self._constrained_json(tool_arguments_prompt(tool), last, tool["parameters"])
        return ToolCall(tool["name"], arguments)

    def _constrained_json(self, system: str, messages: list[Message], schema: dict) -> dict:
        """The model's answer under ``schema`` (a JSON object); {} when it is cut off."""
        prompt = [{"role": "system", "content": system}, *messages]
        with self._lock:
            try:
                result = self._llm.create_chat_completion(
                    messages=self._fit(prompt, N_CTX - TOOL_CHOICE_MAX_TOKENS),  # type: ignore[arg-type]
                    response_format={"type": "json_object", "schema": schema},
                    temperature=0.0,  # a decision, not prose: the likeliest answer
                    max_tokens=TOOL_CHOICE_MAX_TOKENS,
                )
            except (RuntimeError, ValueError) as exc:
                raise EngineError("llm", self.provider, "failed", f"llama.cpp: {exc}") from exc
        content = cast(dict, result)["choices"][0]["message"].get("content") or ""
        try:
            # strict=False: the grammar lets a raw line break into a string.
            value = json.loads(content, strict=False)
        except json.JSONDecodeError:
            # Cut off by the token cap: no choice is the safe reading.
            logger.warning("constrained answer was not JSON: %r", content[:200])
            return {}
        return value if isinstance(value, dict) else {}

    def _fit(self, messages: Sequence[Message], budget: int) -> list[Message]:
        """Drop the oldest history turns until the prompt fits ``budget`` tokens.

        The system prompt and the caller's last message always stay; a last
        message too long on its own keeps its end (the freshest words).
        """
        kept = list(messages)

        def size(message: Message) -> int:
            # Chat-template markers cost a few tokens per message.
            return len(self._tokens(message.get("content", ""))) + TEMPLATE_TOKENS

        head = kept[:1] if kept and kept[0].get("role") == "system" else []
        history, last = kept[len(head) : -1], kept[-1:]
        while history and sum(map(size, head + history + last)) > budget:
            history.pop(0)
        spare = budget - sum(map(size, head + history)) - TEMPLATE_TOKENS
        if last and size(last[0]) > spare + TEMPLATE_TOKENS:
            tokens = self._tokens(last[0].get("content", ""))[-max(spare, 1) :]
            last = [{**last[0], "content": self._text(tokens)}]
        return head + history + last

    def _tokens(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode(), add_bos=False, special=False)

    def _text(self, tokens: list[int]) -> str:
        return self._llm.detokenize(tokens).decode(errors="ignore")

    def classify(
        self,
        text: str,
        intents: Sequence[dict[str, str]],
        model: str,
        temperature: float,
        *,
        examples: Examples | None = None,
    ) -> str:
        """Pick the intent whose name the model finds most probable after a few-shot prompt.

        Every label is scored (sum of its tokens' log-probabilities), so the
        answer is always one of the names; ``temperature`` does not apply to
        an argmax and is ignored.
        """
        names = intent_names(intents, "llm", self.provider)
        tokens = self._tokens(text)
        if len(tokens) > MAX_TEXT_TOKENS:  # a character cap alone lets 4-byte scripts overflow
            text = self._text(tokens[:MAX_TEXT_TOKENS])
        intents = [{"name": n, "description": _description(intents, n)} for n in names]
        shots = intent_examples(intents, examples)
        key = (
            tuple((i["name"], i["description"]) for i in intents),
            tuple(tuple(shots[n]) for n in names),
        )
        with self._lock:
            prompt = self._fit_prompt(intents, shots)
            scores = self._label_scores(prompt(text), names)
            if key not in self._priors:
                # Contextual calibration (Zhao et al., 2021): a small model
                # prefers some labels whatever the input; subtracting each
                # label's score for a content-free input removes that bias
                # (9 → 18 right of 24 on bench/intents.py).
                free = [self._label_scores(prompt(t), names) for t in CONTENT_FREE]
                self._priors[key] = {
                    n: sum(s[n] for s in free) / len(free)
                    - (CATCH_ALL_BONUS if n == CATCH_ALL else 0)
                    for n in names
                }
                if len(self._priors) > MAX_CACHED_PRIORS:
                    self._priors.popitem(last=False)
            self._priors.move_to_end(key)
            prior = self._priors[key]
        return max(names, key=lambda n: scores[n] - prior[n])

    def _fit_prompt(
        self, intents: list[dict[str, str]], shots: dict[str, list[str]]
    ) -> Callable[[str], str]:
        """The prompt for a text, with as much of the examples and descriptions as fits.

        Room is kept for the longest caller text and the labels: twenty
        intents with long descriptions and five examples each would not fit
        a 2048-token window. Example rounds go first, then descriptions are
        shortened; the names always stay.
        """
        room = N_CTX - MAX_TEXT_TOKENS - 2 * TEMPLATE_TOKENS
        most = max(map(len, shots.values()), default=0)
        tries = [(DESCRIPTION_CAPS[0], r) for r in range(most, -1, -1)]
        tries += [(cap, 0) for cap in DESCRIPTION_CAPS[1:]]

        def prompt(cap: int, rounds: int) -> Callable[[str], str]:
            described = [{**i, "description": i["description"][:cap]} for i in intents]
            return partial(classification_prompt, intents=described, examples=shots, rounds=rounds)

        fitting = (t for t in tries if len(self._tokens(prompt(*t)(""))) <= room)
        return prompt(*next(fitting, tries[-1]))

    def _label_scores(self, prompt: str, names: list[str]) -> dict[str, float]:
        tokens = self._llm.tokenize(prompt.encode(), add_bos=False, special=False)
        self._eval_reusing_cache(tokens)
        labels = {n: self._tokens(f" {n}\n") for n in names}
        return self._trie_scores(labels, 0, len(tokens), self._last_logits())

    def _trie_scores(
        self, labels: dict[str, list[int]], depth: int, position: int, logits: np.ndarray
    ) -> dict[str, float]:
        """Each label's log-probability, evaluated only as deep as labels share tokens.

        Labels that differ in their first token (the built-in six do) are all
        scored from the prompt's last logits: one forward pass for the whole
        set. Labels sharing a prefix (``book_table``, ``book_room``) are told
        apart by evaluating the shared token and scoring the next ones.
        """
        logprobs = _log_softmax(logits)
        groups: dict[int, list[str]] = {}
        for name, tokens in labels.items():
            # A label whose tokens ran out while another goes on stays a leaf.
            groups.setdefault(tokens[depth] if depth < len(tokens) else -1, []).append(name)
        scores: dict[str, float] = {}
        for token, group in groups.items():
            score = float(logprobs[token]) if token >= 0 else 0.0
            if len(group) == 1 or token < 0:
                scores.update(dict.fromkeys(group, score))
                continue
            self._llm.n_tokens = position  # rewind to the end of this branch's prefix
            self._llm.eval([token])
            deeper = self._trie_scores(
                {n: labels[n] for n in group}, depth + 1, position + 1, self._last_logits()
            )
            scores.update({n: score + s for n, s in deeper.items()})
        return scores

    def _eval_reusing_cache(self, tokens: list[int]) -> None:
        """Evaluate ``tokens``, skipping the prefix already in the KV cache.

        The instructions and examples are the same for every call of an agent,
        so only the caller's text is evaluated again.
        """
        cached = self._llm.input_ids[: self._llm.n_tokens]
        same = 0
        # Evaluate at least one token: its logits are what labels are scored from.
        limit = min(len(cached), len(tokens) - 1)
        while same < limit and cached[same] == tokens[same]:
            same += 1
        self._llm.n_tokens = same  # eval() drops the KV cache beyond this point
        self._llm.eval(tokens[same:])

    def _last_logits(self) -> np.ndarray:
        # Without logits_all (which would cost n_ctx × vocab floats) llama.cpp
        # keeps only the last position's logits, which is all label scoring needs.
        pointer = self._llm._ctx.get_logits()
        return np.ctypeslib.as_array(pointer, shape=(self._llm.n_vocab(),)).copy()


def _description(intents: Sequence[dict[str, str]], name: str) -> str:
    return next((str(i.get("description", "")) for i in intents if i.get("name") == name), "")


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())
