"""Server LLM: Ollama through the ``ollama`` client (``/api/chat``, ``/api/tags``).

Consumes chat messages (responder, with the agent's tools when it has some)
or a caller's text plus the agent's intents (classifier); produces streamed
text deltas (NDJSON from ``/api/chat``), a tool call (Ollama's ``tool_calls``)
or one intent name. The model and temperature come from the agent; ``keep_alive``
keeps it loaded on the server between turns.
"""

import json
from collections.abc import Iterator, Sequence

import httpx
import ollama
import pydantic

from workers.engines.base import EngineError, Message, ToolCall, ToolSpec
from workers.engines.http import status_error, transport_error
from workers.engines.prompts import Examples, classification_prompt, intent_names

# An intent name is one word; a handful of tokens bounds a runaway answer.
CLASSIFY_MAX_TOKENS = 20


class OllamaLLM:
    provider = "ollama"

    def __init__(self, host: str, keep_alive: str, timeout_s: float, api_key: str = "") -> None:
        self._host = host
        self._keep_alive = keep_alive
        # Ollama itself has no auth; a key is for proxies and ollama.com.
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._client = ollama.Client(host=host, timeout=timeout_s, headers=headers)

    def stream(
        self, messages: Sequence[Message], model: str, temperature: float, max_tokens: int
    ) -> Iterator[str]:
        with self._errors(model):
            parts = self._client.chat(
                model=model,
                messages=list(messages),
                stream=True,
                keep_alive=self._keep_alive,
                options={"temperature": temperature, "num_predict": max_tokens},
            )
            for part in parts:
                if part.message.content:
                    yield part.message.content

    def stream_or_call(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        model: str,
        temperature: float,
        max_tokens: int,
    ) -> Iterator[str | ToolCall]:
        """One streamed ``/api/chat`` with ``tools``: text deltas, or the first tool call.

        Ollama streams a tool call as a message whose ``tool_calls`` hold the
        function's name and its arguments as a JSON object.
        """
        offered = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t["parameters"],
                },
            }
            for t in tools
        ]
        with self._errors(model):
            parts = self._client.chat(
                model=model,
                messages=list(messages),
                tools=offered,
                stream=True,
                keep_alive=self._keep_alive,
                options={"temperature": temperature, "num_predict": max_tokens},
            )
            for part in parts:
                if part.message.content:
                    yield part.message.content
                for call in part.message.tool_calls or []:
                    yield ToolCall(call.function.name, dict(call.function.arguments or {}))
                    return

    def classify(
        self,
        text: str,
        intents: Sequence[dict[str, str]],
        model: str,
        temperature: float,
        *,
        examples: Examples | None = None,
    ) -> str:
        """Ask for ``{"intent": <one of the names>}`` under a JSON schema with an enum.

        Ollama enforces the schema with a grammar, so the answer is one of the
        names; it is still checked, because a server may ignore ``format``.
        """
        names = intent_names(intents, "llm", self.provider)
        schema = {
            "type": "object",
            "properties": {"intent": {"type": "string", "enum": names}},
            "required": ["intent"],
        }
        with self._errors(model):
            response = self._client.chat(
                model=model,
                messages=[
                    {"role": "user", "content": classification_prompt(text, intents, examples)}
                ],
                format=schema,
                keep_alive=self._keep_alive,
                options={"temperature": temperature, "num_predict": CLASSIFY_MAX_TOKENS},
            )
        content = response.message.content or ""
        try:
            intent = json.loads(content)["intent"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise self._bad_response(f"not an intent object: {content[:200]!r}") from exc
        if intent not in names:
            raise self._bad_response(f"{intent!r} is not one of {names}")
        return intent

    def models(self) -> list[str]:
        """The model tags the server has pulled (``/api/tags``)."""
        with self._errors(""):
            return [m.model for m in self._client.list().models if m.model]

    def _errors(self, model: str) -> "_ErrorMapper":
        return _ErrorMapper(self, model)

    def _bad_response(self, detail: str) -> EngineError:
        return EngineError(
            "llm", self.provider, "bad_response", f"Unexpected Ollama answer: {detail}"
        )


class _ErrorMapper:
    """Context manager turning the client's exceptions into EngineError codes."""

    def __init__(self, engine: OllamaLLM, model: str) -> None:
        self._engine = engine
        self._model = model

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None and not isinstance(exc, EngineError | GeneratorExit):
            raise self._map(exc) from exc

    def _map(self, exc: BaseException) -> EngineError:
        engine = self._engine
        if isinstance(exc, ollama.ResponseError):
            if exc.status_code == 404 and self._model:
                return EngineError(
                    "llm",
                    engine.provider,
                    "unknown_model",
                    f"Ollama at {engine._host} has no model {self._model!r}; "
                    f"run `ollama pull {self._model}` (it has: {self._available()}).",
                )
            if exc.status_code == -1:  # an error object inside the NDJSON stream
                return EngineError("llm", engine.provider, "failed", f"Ollama: {exc.error}")
            return status_error("llm", engine.provider, exc.status_code, exc.error)
        if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
            return engine._bad_response(str(exc)[:200])
        if isinstance(exc, Exception):
            mapped = transport_error("llm", engine.provider, exc, engine._host)
            if mapped:
                return mapped
        return EngineError("llm", engine.provider, "failed", f"{type(exc).__name__}: {exc}")

    def _available(self) -> str:
        try:
            return ", ".join(m.model or "" for m in self._engine._client.list().models) or "none"
        except (ollama.ResponseError, httpx.HTTPError, ConnectionError, pydantic.ValidationError):
            return "unknown"
