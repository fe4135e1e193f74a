"""Agent ``tools``: validation names the field, header values are write-only
secrets in the API, kept when sent back masked, and masked in the admin and
the builder page."""

import json

import pytest

from agents.models import Agent
from agents.tools import SECRET_MASK
from calls.services import start_session
from calls.turns import record_turn

from .helpers import builder_form, fields, post
from .test_admin import admin_client  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

SECRET = "sk-live-0123456789"
CHECK_ORDER = {
    "name": "check_order",
    "description": "Look up an order's delivery status.",
    "url": "https://shop.example/api/orders",
    "method": "POST",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
    "headers": {"Authorization": f"Bearer {SECRET}"},
    "timeout_s": 3,
}


def send(client, method, url, body, auth):
    return getattr(client, method)(url, body, content_type="application/json", **auth)


def create(client, auth, tools):
    return post(client, "/api/agents", {"name": "Shop", "tools": tools}, **auth)


def test_tools_are_saved_and_secrets_are_never_read_back(client, auth):
    response = create(client, auth, [CHECK_ORDER, {"name": "end_call"}])
    assert response.status_code == 201, response.content
    body = response.json()
    assert SECRET not in response.content.decode()
    assert body["tools"][0]["headers"] == {"Authorization": SECRET_MASK}
    assert body["tools"][1] == {"name": "end_call"}
    stored = Agent.objects.get(pk=body["id"]).tools
    assert stored[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
    listed = client.get("/api/agents", **auth)
    assert SECRET not in listed.content.decode()
    assert SECRET not in client.get(f"/api/agents/{body['id']}", **auth).content.decode()


def test_a_masked_header_sent_back_keeps_the_secret_and_a_new_value_replaces_it(client, auth):
    agent_id = create(client, auth, [CHECK_ORDER]).json()["id"]
    url = f"/api/agents/{agent_id}"
    read_back = client.get(url, **auth).json()["tools"]
    read_back[0]["description"] = "Find an order."
    replaced = send(client, "put", url, {"name": "Shop", "tools": read_back}, auth)
    assert replaced.status_code == 200, replaced.content
    tool = Agent.objects.get(pk=agent_id).tools[0]
    assert tool["description"] == "Find an order."
    assert tool["headers"]["Authorization"] == f"Bearer {SECRET}"

    read_back[0]["headers"] = {"Authorization": "Bearer new", "X-Shop": SECRET_MASK}
    patched = send(client, "patch", url, {"tools": read_back}, auth)
    assert patched.status_code == 200, patched.content
    # A mask with no stored value behind it stays as sent: the operator sees it.
    assert Agent.objects.get(pk=agent_id).tools[0]["headers"] == {
        "Authorization": "Bearer new",
        "X-Shop": SECRET_MASK,
    }

    assert send(client, "patch", url, {"tools": []}, auth).status_code == 200
    assert Agent.objects.get(pk=agent_id).tools == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"name": "check order"}, "must start with a letter"),
        ({"name": "end_call"}, "built-in"),
        ({"url": "ftp://shop.example/x"}, "http or https"),
        ({"url": "https://user:pw@shop.example/x"}, "credentials"),
        ({"description": ""}, "description"),
        ({"parameters": {"type": "string"}}, '"type": "object"'),
        ({"parameters": {"type": "object", "properties": {"a": {"type": "strng"}}}}, "JSON Schema"),
        ({"parameters": {"type": "object", "$ref": "http://169.254.169.254/x"}}, "JSON Schema"),
        ({"headers": {"Host": "internal"}}, "not a header you can set"),
        ({"headers": {"X-A": "one\r\nX-B: two"}}, "one line"),
    ],
)
def test_invalid_tools_are_refused_naming_the_field(client, auth, change, words):
    errors = fields(create(client, auth, [{**CHECK_ORDER, **change}]))
    assert list(errors) == ["tools"]
    assert words in errors["tools"]
    assert not Agent.objects.exists()


@pytest.mark.parametrize(
    ("tools", "field"),
    [
        ([{**CHECK_ORDER, "timeout_s": 60}], "tools.0.timeout_s"),
        ([{**CHECK_ORDER, "method": "TRACE"}], "tools.0.method"),
        ([{**CHECK_ORDER, "name": ""}], "tools.0.name"),
        (
            [{"name": f"t{n}", "description": "x", "url": "https://a.example"} for n in range(11)],
            "tools",
        ),
    ],
)
def test_out_of_range_tool_fields_are_refused_by_the_schema(client, auth, tools, field):
    assert field in fields(create(client, auth, tools))


def test_duplicate_names_and_a_transfer_without_a_number_are_refused(client, auth):
    errors = fields(create(client, auth, [CHECK_ORDER, CHECK_ORDER]))
    assert "appears twice" in errors["tools"]
    errors = fields(create(client, auth, [{"name": "transfer_call"}]))
    assert "E.164" in errors["tools"]
    created = create(client, auth, [{"name": "transfer_call", "to": "+15551234567"}])
    assert created.status_code == 201


def rendered_tools(form) -> list[dict]:
    """The tools as the page's textarea shows them."""
    return json.loads(form.fields["tools"].prepare_value(form["tools"].value()))


def test_admin_masks_header_secrets_and_keeps_them_on_save(admin_client, user):  # noqa: F811
    agent = Agent.objects.create(owner=user, name="Shop", tools=[CHECK_ORDER])
    url = f"/admin/agents/agent/{agent.id}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    shown = rendered_tools(page.context["adminform"].form)
    assert shown[0]["headers"] == {"Authorization": SECRET_MASK}
    shown[0]["timeout_s"] = 4
    knowledge_inline = {  # the agent page's knowledge entries, none added
        "knowledge-TOTAL_FORMS": "0",
        "knowledge-INITIAL_FORMS": "0",
    }
    response = admin_client.post(
        url,
        builder_form(name="Shop", owner=str(user.pk), tools=json.dumps(shown)) | knowledge_inline,
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    tool = Agent.objects.get(pk=agent.id).tools[0]
    assert tool["timeout_s"] == 4
    assert tool["headers"]["Authorization"] == f"Bearer {SECRET}"


def test_builder_page_masks_secrets_and_keeps_them_on_save(client, user):
    agent = Agent.objects.create(owner=user, name="Shop", tools=[CHECK_ORDER])
    client.force_login(user)
    url = f"/agents/{agent.id}/edit/"
    page = client.get(url)
    assert SECRET not in page.content.decode()
    shown = rendered_tools(page.context["form"])
    assert shown[0]["headers"] == {"Authorization": SECRET_MASK}
    shown[0]["timeout_s"] = 4
    response = client.post(url, builder_form(name="Shop", tools=json.dumps(shown)))
    assert response.status_code == 302
    tool = Agent.objects.get(pk=agent.id).tools[0]
    assert tool["timeout_s"] == 4
    assert tool["headers"]["Authorization"] == f"Bearer {SECRET}"


def test_a_turns_tool_calls_are_listed_by_the_api_the_session_page_and_the_admin(
    client,
    admin_client,  # noqa: F811
    auth,
    user,
):
    agent = Agent.objects.create(owner=user, name="Shop", tools=[CHECK_ORDER])
    session = start_session(agent, user)
    audit = {
        "name": "check_order",
        "arguments": {"order_id": "4711"},
        "status": "timeout",
        "ms": 5003,
        "result": "No answer within 5.0 s.",
    }
    record_turn(str(session.id), 1, "agent", text="Sorry.", tool_calls=[audit])

    turns = client.get(f"/api/sessions/{session.id}/turns", **auth).json()
    assert turns[0]["tool_calls"] == [audit]

    turn = session.turns.get()
    turn_page = admin_client.get(f"/admin/calls/turn/{turn.pk}/change/").content.decode()
    assert "check_order" in turn_page and "No answer within 5.0 s." in turn_page
    inline = admin_client.get(f"/admin/calls/callsession/{session.id}/change/").content.decode()
    assert "check_order" in inline and "timeout" in inline

    client.force_login(user)
    page = client.get(f"/sessions/{session.id}/").content.decode()
    assert "check_order" in page and "timeout" in page and "5003 ms" in page
