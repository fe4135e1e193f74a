"""Small helpers for the API tests."""

from typing import Any

from django.test import Client


def fields(response: Any) -> dict[str, str]:
    """``{field: message}`` of a 422 answer (fails the test on any other status)."""
    assert response.status_code == 422, response.content
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def post(client: Client, url: str, body: Any = None, **headers: str) -> Any:
    return client.post(url, body, content_type="application/json", **headers)


def builder_form(**overrides: str) -> dict[str, str]:
    """A valid POST of the agent builder page (/agents/new/), with ``overrides``."""
    form = {
        "name": "Desk",
        "language": "en",
        "system_prompt": "You are helpful.",
        "intents": '[{"name": "other", "description": "Anything"}]',
        "classifier_model": "qwen2.5:1.5b",
        "classifier_temperature": "0.3",
        "responder_model": "llama3.2:1b",
        "responder_temperature": "0.7",
        "voice": "en_US-joe-medium",
        "is_active": "on",
    }
    form.update(overrides)
    return form
