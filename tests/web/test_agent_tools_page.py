"""The agent builder's Tools editor in real Chromium: an invalid tool is
refused with the reason beside the field, a valid one is saved, and its
header secret is shown masked and kept when the form is saved again."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from agents.models import Agent
from agents.tools import SECRET_MASK

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "Bearer sk-live-builder-42"
TOOL = {
    "name": "check_order",
    "description": "Look up the delivery status of an order.",
    "url": "https://shop.example/api/orders",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    "headers": {"Authorization": SECRET},
}


def test_tools_are_edited_in_the_builder_with_secrets_masked(page: Page, make_user) -> None:
    owner = make_user("toolmaker")
    agent = Agent.objects.create(owner=owner, name="Shop line")
    log_in(page, "toolmaker")
    page.goto(f"/agents/{agent.pk}/edit/")

    tools = page.get_by_label("Tools")
    tools.fill(json.dumps([{**TOOL, "url": "ftp://shop.example/orders"}]))
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator('[data-error-for="tools"]')).to_contain_text("http or https")
    assert Agent.objects.get(pk=agent.pk).tools == []

    page.get_by_label("Tools").fill(json.dumps([TOOL, {"name": "end_call"}]))
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url("**/agents/")
    assert Agent.objects.get(pk=agent.pk).tools[0]["headers"]["Authorization"] == SECRET

    page.goto(f"/agents/{agent.pk}/edit/")
    shown = page.get_by_label("Tools").input_value()
    assert SECRET not in page.content()
    assert json.loads(shown)[0]["headers"] == {"Authorization": SECRET_MASK}
    page.get_by_label("Tools").fill(shown.replace('"Look up', '"Find'))
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url("**/agents/")
    saved = Agent.objects.get(pk=agent.pk).tools
    assert saved[0]["description"].startswith("Find")
    assert saved[0]["headers"]["Authorization"] == SECRET
