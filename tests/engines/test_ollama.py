"""Ollama engine against a fake /api/chat + /api/tags, through the real ollama client."""

import pytest

from agents.models import DEFAULT_INTENTS
from tests.engines.conftest import TIMEOUT_S
from tests.fakes.ollama import MODELS, REPLY
from tests.fakes.server import FakeServer
from workers.engines.base import EngineError, ToolCall
from workers.engines.ollama_llm import OllamaLLM

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi!"},
]
NAMES = [i["name"] for i in DEFAULT_INTENTS]


def engine(url: str, api_key: str = "") -> OllamaLLM:
    return OllamaLLM(url, "5m", TIMEOUT_S, api_key=api_key)


def test_stream_yields_deltas_as_they_arrive(ollama_fake: FakeServer) -> None:
    deltas = engine(ollama_fake.url).stream(MESSAGES, "llama3.2:1b", 0.7, 64)

    first = next(deltas)  # the fake holds the rest back until released
    ollama_fake.release.set()
    rest = list(deltas)

    assert [first, *rest] == REPLY
    assert ollama_fake.released_in_time is True
    [request] = ollama_fake.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    body = request.json()
    assert body["model"] == "llama3.2:1b"
    assert body["messages"] == MESSAGES
    assert body["stream"] is True
    assert body["keep_alive"] == "5m"
    assert body["options"] == {"temperature": 0.7, "num_predict": 64}


def test_classify_constrains_output_to_the_intent_enum(ollama_fake: FakeServer) -> None:
    ollama_fake.options["intent"] = "farewell"
    intent = engine(ollama_fake.url).classify("bye now", DEFAULT_INTENTS, "qwen2.5:1.5b", 0.3)

    assert intent == "farewell"
    body = ollama_fake.requests[0].json()
    assert body["format"]["properties"]["intent"]["enum"] == NAMES
    assert body["format"]["required"] == ["intent"]
    assert body["options"]["temperature"] == 0.3
    assert "Message: bye now" in body["messages"][0]["content"]


def test_label_outside_the_enum_is_a_bad_response(ollama_fake: FakeServer) -> None:
    ollama_fake.options["intent"] = "weather"
    with pytest.raises(EngineError) as err:
        engine(ollama_fake.url).classify("hm", DEFAULT_INTENTS, "qwen2.5:1.5b", 0.3)
    assert err.value.code == "bad_response"


def test_unknown_model_names_the_pulled_ones(ollama_fake: FakeServer) -> None:
    with pytest.raises(EngineError) as err:
        list(engine(ollama_fake.url).stream(MESSAGES, "mistral:7b", 0.7, 16))
    assert err.value.code == "unknown_model"
    assert "ollama pull mistral:7b" in err.value.message
    assert all(m in err.value.message for m in MODELS)
    assert [r.path for r in ollama_fake.requests] == ["/api/chat", "/api/tags"]


def test_models_lists_tags(ollama_fake: FakeServer) -> None:
    assert engine(ollama_fake.url).models() == MODELS


def test_api_key_is_sent_as_bearer(ollama_fake: FakeServer) -> None:
    ollama_fake.options["intent"] = "question"
    engine(ollama_fake.url, api_key="ol-key").classify("why?", DEFAULT_INTENTS, "qwen2.5:1.5b", 0)
    assert ollama_fake.requests[0].headers["authorization"] == "Bearer ol-key"


def test_error_inside_the_stream_is_reported(ollama_fake: FakeServer) -> None:
    ollama_fake.options["stream_error"] = True
    ollama_fake.release.set()
    with pytest.raises(EngineError) as err:
        list(engine(ollama_fake.url).stream(MESSAGES, "llama3.2:1b", 0.7, 16))
    assert err.value.code == "failed"
    assert "unexpectedly stopped" in err.value.message


@pytest.mark.parametrize(
    ("mode", "code"), [("error", "failed"), ("slow", "timeout"), ("malformed", "bad_response")]
)
def test_server_failures_map_to_codes(ollama_fake: FakeServer, mode: str, code: str) -> None:
    ollama_fake.mode = mode
    llm = engine(ollama_fake.url)
    for call in (
        lambda: list(llm.stream(MESSAGES, "llama3.2:1b", 0.7, 16)),
        lambda: llm.classify("hello", DEFAULT_INTENTS, "qwen2.5:1.5b", 0.3),
    ):
        with pytest.raises(EngineError) as err:
            call()
        assert (err.value.stage, err.value.provider, err.value.code) == ("llm", "ollama", code)


def test_unreachable_server(closed_port_url: str) -> None:
    llm = engine(closed_port_url)
    with pytest.raises(EngineError) as err:
        list(llm.stream(MESSAGES, "llama3.2:1b", 0.7, 16))
    assert err.value.code == "unreachable"
    with pytest.raises(EngineError) as err:
        llm.classify("hello", DEFAULT_INTENTS, "qwen2.5:1.5b", 0.3)
    assert err.value.code == "unreachable"


CHECK_ORDER = {
    "name": "check_order",
    "description": "Look up an order's delivery status.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
}


def test_stream_or_call_offers_the_tools_and_returns_the_models_tool_call(
    ollama_fake: FakeServer,
) -> None:
    ollama_fake.release.set()
    ollama_fake.options["tool_call"] = {"name": "check_order", "arguments": {"order_id": "4711"}}
    items = list(
        engine(ollama_fake.url).stream_or_call(MESSAGES, [CHECK_ORDER], "llama3.2:1b", 0.7, 64)
    )

    assert items == [ToolCall("check_order", {"order_id": "4711"})]
    body = ollama_fake.requests[0].json()
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "check_order",
                "description": CHECK_ORDER["description"],
                "parameters": CHECK_ORDER["parameters"],
            },
        }
    ]
    assert body["stream"] is True


def test_stream_or_call_streams_the_answer_when_no_tool_is_called(
    ollama_fake: FakeServer,
) -> None:
    ollama_fake.release.set()
    items = list(
        engine(ollama_fake.url).stream_or_call(MESSAGES, [CHECK_ORDER], "llama3.2:1b", 0.7, 64)
    )

    assert items == REPLY
    assert ollama_fake.requests[0].json()["tools"][0]["function"]["name"] == "check_order"
