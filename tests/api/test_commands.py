"""Management commands: the demo seed, and the Postman collection kept in sync."""

import json

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from agents.models import Agent
from voiceproj.postman import COLLECTION_PATH, render


def test_checked_in_postman_collection_is_current():
    """Fails when the API changed without `make postman`."""
    assert COLLECTION_PATH.read_text() == render(), "run `make postman` and commit the result"


def test_postman_collection_covers_every_operation():
    from voiceproj.api import api

    schema = api.get_openapi_schema(path_prefix="/api/")
    expected = sorted(
        (method.upper(), path.replace("{", ":").replace("}", ""))
        for path, ops in schema["paths"].items()
        for method in ops
    )
    collection = json.loads(render())
    found = sorted(
        (item["request"]["method"], "/" + "/".join(item["request"]["url"]["path"]))
        for folder in collection["item"]
        for item in folder["item"]
    )
    assert found == expected
    assert "{{access_token}}" in json.dumps(collection["auth"])


def test_postman_login_sends_the_two_factor_code_variable():
    collection = json.loads(render())
    requests = {
        item["request"]["url"]["raw"]: item["request"]
        for folder in collection["item"]
        for item in folder["item"]
    }
    body = json.loads(requests["{{baseUrl}}/api/auth/login"]["body"]["raw"])
    assert body["code"] == "{{mfa_code}}"
    assert {"key": "mfa_code", "value": ""} in collection["variable"]


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_the_demo_can_log_in(client: Client):
    call_command("seed_demo")
    user = User.objects.get(username="demo")
    user.set_password("changed-by-someone")
    user.save()
    call_command("seed_demo")

    assert User.objects.filter(username="demo").count() == 1
    agents = Agent.objects.filter(owner__username="demo")
    assert agents.count() == 1
    assert agents.get().greeting
    response = client.post(
        "/api/auth/login",
        {"username": "demo", "password": "demo-pass-1234"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert client.login(username="demo", password="demo-pass-1234")
    assert client.get("/admin/").status_code == 200
