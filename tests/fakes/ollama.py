"""Fake Ollama server: ``POST /api/chat`` (NDJSON stream or one JSON) and ``GET /api/tags``.

Only the models in ``MODELS`` exist; others answer 404 like a real server
that has not pulled them. A ``format`` JSON schema with an enum is honoured
by answering ``options["intent"]`` (or the enum's first value). A chat
offered ``tools`` answers with ``options["tool_call"]`` (``{"name",
"arguments"}``) when set, as Ollama streams one: a message whose
``tool_calls`` hold ``{"function": {"name", "arguments"}}``, then ``done``.
"""

import json
from typing import Any

from tests.fakes.server import FakeHandler, FakeServer

MODELS = ["qwen2.5:1.5b", "llama3.2:1b"]
REPLY = ["Hello", " there.", " How can", " I help?"]


def _tag(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": "2026-01-01T00:00:00Z",
        "size": 1_000_000,
        "digest": "0" * 64,
        "details": {"format": "gguf", "family": "fake", "parameter_size": "1B"},
    }


class OllamaHandler(FakeHandler):
    def do_GET(self) -> None:
        self.record()
        if self.path == "/api/tags":
            self.send_json(200, {"models": [_tag(m) for m in MODELS]})
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self) -> None:
        request = self.record()
        if request.path != "/api/chat":
            self.send_json(404, {"error": "not found"})
            return
        if self.misbehave():
            return
        body = request.json()
        if body["model"] not in MODELS:
            self.send_json(
                404, {"error": f'model "{body["model"]}" not found, try pulling it first'}
            )
            return
        if body.get("format"):
            enum = body["format"]["properties"]["intent"]["enum"]
            content = json.dumps({"intent": self.fake.options.get("intent", enum[0])})
            self.send_json(200, self._message(body["model"], content, done=True))
        elif body.get("tools") and self.fake.options.get("tool_call"):
            message = self._message(body["model"], "", done=False)
            message["message"]["tool_calls"] = [{"function": self.fake.options["tool_call"]}]
            lines = [message, self._message(body["model"], "", done=True)]
            self.send_stream(
                [json.dumps(line).encode() + b"\n" for line in lines], "application/x-ndjson"
            )
        elif body.get("stream", True):
            lines = [self._message(body["model"], part, done=False) for part in REPLY]
            if self.fake.options.get("stream_error"):
                lines.append({"error": "model runner has unexpectedly stopped"})
            lines.append(self._message(body["model"], "", done=True))
            chunks = [json.dumps(line).encode() + b"\n" for line in lines]
            self.send_stream(chunks, "application/x-ndjson")
        else:
            self.send_json(200, self._message(body["model"], "".join(REPLY), done=True))

    @staticmethod
    def _message(model: str, content: str, done: bool) -> dict[str, Any]:
        message: dict[str, Any] = {
            "model": model,
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content},
            "done": done,
        }
        if done:
            message.update(done_reason="stop", total_duration=1000, eval_count=4)
        return message


def ollama_server() -> FakeServer:
    return FakeServer(OllamaHandler)
