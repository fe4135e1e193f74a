"""Every input has a size limit: the OpenAPI schema states one for each field, the
builder form enforces the model's, and an oversized body is refused before parsing."""

import json

import pytest
from django.test import Client

from agents.models import Agent

from .helpers import builder_form, post

pytestmark = pytest.mark.django_db

MEGABYTE = "x" * 1_000_000
# Strings whose format bounds their length.
BOUNDED_FORMATS = {"uuid", "date-time", "binary"}


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def unbounded(schema: dict, node: dict, where: str) -> list[str]:
    """Paths of the strings without maxLength and arrays without maxItems under ``node``."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return unbounded(schema, schema["components"]["schemas"][name], where)
    found = []
    for key in ("anyOf", "allOf", "oneOf"):
        for i, option in enumerate(node.get(key, [])):
            found += unbounded(schema, option, f"{where}|{i}")
    kind = node.get("type")
    bounded = "maxLength" in node or "enum" in node or node.get("format") in BOUNDED_FORMATS
    if kind == "string" and not bounded:
        found.append(where)
    if kind == "array":
        if "maxItems" not in node:
            found.append(where)
        found += unbounded(schema, node.get("items", {}), f"{where}[]")
    for name, prop in node.get("properties", {}).items():
        found += unbounded(schema, prop, f"{where}.{name}")
    return found


def test_every_string_and_list_the_api_accepts_has_a_limit(client):
    schema = client.get("/api/openapi.json").json()
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} ?{parameter['name']}"
                missing += unbounded(schema, parameter["schema"], where)
            body = operation.get("requestBody", {}).get("content", {})
            for media in body.values():
                missing += unbounded(schema, media["schema"], f"{method.upper()} {path} body")
    assert missing == []


def test_builder_refuses_an_intent_description_of_a_megabyte(signed_in):
    intents = json.dumps([{"name": "other", "description": MEGABYTE[:200_000]}])
    response = signed_in.post("/agents/new/", builder_form(intents=intents))
    assert response.status_code == 200
    assert "longer than 500 characters" in response.content.decode()
    assert not Agent.objects.exists()


def test_builder_refuses_intents_with_fields_of_their_own(signed_in):
    intents = json.dumps([{"name": "other", "description": "Anything", "payload": "x" * 5000}])
    response = signed_in.post("/agents/new/", builder_form(intents=intents))
    assert response.status_code == 200
    assert "Each intent is an object with a name and a description." in response.content.decode()
    assert not Agent.objects.exists()


def test_an_oversized_api_body_is_413_before_it_is_parsed(client, auth):
    response = post(client, "/api/agents", {"name": "Desk", "description": MEGABYTE}, **auth)
    assert response.status_code == 413
    assert "detail" in response.json()
    assert not Agent.objects.exists()


def test_an_oversized_form_post_is_refused_without_saving(signed_in):
    response = signed_in.post("/agents/new/", builder_form(system_prompt=MEGABYTE))
    assert response.status_code == 400
    assert not Agent.objects.exists()
