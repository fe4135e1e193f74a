"""Small helpers for the API tests."""

from typing import Any

from django.test import Client


def fields(response: Any) -> dict[str, str]:
    """``{field: message}`` of a 422 answer (fails the test on any other status)."""
    assert response.status_code == 422, response.content
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def post(client: Client, url: str, body: Any = None, **headers: str) -> Any:
    return client.post(url, body, content_type="application/json", **headers)
