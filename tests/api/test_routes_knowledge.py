"""Agent routes (validation on every way in) and the knowledge API (CRUD, owner
isolation, size limits, passages), plus their admin and builder-page forms."""

import pytest
from django.core.exceptions import ValidationError

from agents.knowledge import search
from agents.models import KNOWLEDGE_CONTENT_MAX, KNOWLEDGE_TITLE_MAX, Agent, KnowledgeEntry
from tests.conftest import jwt_headers

from .helpers import builder_form, fields, post

pytestmark = pytest.mark.django_db

GOOD_ROUTES = {
    "greeting": {"action": "say", "text": "Hello, this is the front desk."},
    "question": {"action": "knowledge"},
    "command": {"action": "tool", "tool": "book_table"},
    "clarification": {"action": "transfer", "to": "+1 (415) 555-0199"},
    "farewell": {"action": "end", "text": "Bye for now."},
    "other": {"action": "answer"},
}


def send(client, method, url, body, auth):
    return getattr(client, method)(url, body, content_type="application/json", **auth)


def test_routes_are_saved_normalized_and_returned(client, auth, agent):
    url = f"/api/agents/{agent.id}"
    response = send(client, "patch", url, {"routes": GOOD_ROUTES}, auth)
    assert response.status_code == 200, response.content
    routes = response.json()["routes"]
    assert routes["clarification"] == {"action": "transfer", "to": "+14155550199"}
    assert routes["farewell"] == {"action": "end", "text": "Bye for now."}
    assert client.get(url, **auth).json()["routes"] == routes
    assert Agent.objects.get(pk=agent.pk).routes == routes

    # An end route without text is stored without a null text.
    put = send(client, "put", url, {"name": "X", "routes": {"farewell": {"action": "end"}}}, auth)
    assert put.json()["routes"] == {"farewell": {"action": "end"}}
    created = post(client, "/api/agents", {"name": "New"}, **auth)
    assert created.json()["routes"] == {}


@pytest.mark.parametrize(
    ("routes", "field"),
    [
        ({"nonsense": {"action": "answer"}}, "routes"),
        ({"question": {"action": "dance"}}, "routes.question"),
        ({"question": {"action": "say"}}, "routes.question.say.text"),
        ({"question": {"action": "say", "text": "   "}}, "routes.question.say.text"),
        ({"question": {"action": "say", "text": "x" * 501}}, "routes.question.say.text"),
        ({"question": {"action": "transfer"}}, "routes.question.transfer.to"),
        ({"question": {"action": "transfer", "to": "555-0199"}}, "routes.question.transfer.to"),
        ({"question": {"action": "tool"}}, "routes.question.tool.tool"),
        ({"question": {"action": "answer", "text": "hi"}}, "routes.question.answer.text"),
        ({"question": "answer"}, "routes.question"),
    ],
)
def test_bad_routes_are_422_naming_the_field(client, auth, agent, routes, field):
    for method in ("patch", "put"):
        response = send(
            client, method, f"/api/agents/{agent.id}", {"name": "A", "routes": routes}, auth
        )
        assert field in fields(response), (method, response.json())
    assert Agent.objects.get(pk=agent.pk).routes == {}  # nothing was saved


def test_a_route_must_name_one_of_the_agents_intents(client, auth, agent):
    intents = [{"name": "hours", "description": "opening hours"}]
    body = {"name": "A", "intents": intents, "routes": {"question": {"action": "knowledge"}}}
    errors = fields(post(client, "/api/agents", body, **auth))
    assert "question" in errors["routes"]
    # Dropping an intent a route still names is refused too.
    send(client, "patch", f"/api/agents/{agent.id}", {"routes": GOOD_ROUTES}, auth)
    errors = fields(send(client, "patch", f"/api/agents/{agent.id}", {"intents": intents}, auth))
    assert "routes" in errors


def test_model_validators_refuse_bad_routes(agent):
    for routes in (
        {"question": {"action": "transfer", "to": "12"}},
        {"question": {"action": "fly"}},
        {"missing": {"action": "answer"}},
        ["not", "an", "object"],
    ):
        agent.routes = routes
        with pytest.raises(ValidationError) as raised:
            agent.full_clean()
        assert "routes" in raised.value.message_dict


def test_builder_form_saves_routes_and_shows_errors(client, user):
    client.force_login(user)
    routes = '{"other": {"action": "say", "text": "We only take bookings by phone."}}'
    response = client.post("/agents/new/", builder_form(routes=routes))
    assert response.status_code == 302
    agent = Agent.objects.get(owner=user, name="Desk")
    assert agent.routes == {"other": {"action": "say", "text": "We only take bookings by phone."}}

    bad = client.post(
        f"/agents/{agent.pk}/edit/", builder_form(routes='{"other": {"action": "transfer"}}')
    )
    assert bad.status_code == 200
    assert "needs a &#x27;to&#x27;" in bad.content.decode()
    assert Agent.objects.get(pk=agent.pk).routes == agent.routes


# --- knowledge --------------------------------------------------------------------


def test_knowledge_crud_splits_passages_and_is_searchable(client, auth, agent):
    base = f"/api/agents/{agent.id}/knowledge"
    assert client.get(base, **auth).json() == []
    long_text = " ".join(f"Fact number {n} is about the weekly market." for n in range(60))
    created = post(client, base, {"title": "Market", "content": long_text}, **auth)
    assert created.status_code == 201, created.content
    entry = created.json()
    assert entry["title"] == "Market" and entry["agent_id"] == agent.id
    assert entry["passages"] > 1  # long text is split into passages

    hours = post(client, base, {"title": "Opening hours", "content": "We open at 9 am."}, **auth)
    assert [e["title"] for e in client.get(base, **auth).json()] == ["Market", "Opening hours"]
    assert search(agent.id, "when do you open?")[0].entry_id == hours.json()["id"]

    url = f"{base}/{hours.json()['id']}"
    replaced = send(client, "put", url, {"title": "Hours", "content": "Doors open at 10."}, auth)
    assert replaced.status_code == 200
    assert client.get(url, **auth).json()["content"] == "Doors open at 10."
    assert "Doors open at 10." in search(agent.id, "when are the doors open")[0].text

    assert client.delete(url, **auth).status_code == 204
    assert client.get(url, **auth).status_code == 404
    assert search(agent.id, "doors open") == []


def test_another_users_knowledge_is_404(client, auth, agent, other_user):
    entry = KnowledgeEntry.objects.create(agent=agent, title="Secret", content="The code is 42.")
    stranger = jwt_headers(other_user)
    base = f"/api/agents/{agent.id}/knowledge"
    assert client.get(base, **stranger).status_code == 404
    assert post(client, base, {"title": "x", "content": "y"}, **stranger).status_code == 404
    url = f"{base}/{entry.id}"
    assert client.get(url, **stranger).status_code == 404
    assert send(client, "put", url, {"title": "x", "content": "y"}, stranger).status_code == 404
    assert client.delete(url, **stranger).status_code == 404
    assert KnowledgeEntry.objects.get(pk=entry.pk).content == "The code is 42."
    # An entry reached through another agent of the same user is a 404 too.
    mine = Agent.objects.create(owner=agent.owner, name="Other agent")
    assert client.get(f"/api/agents/{mine.id}/knowledge/{entry.id}", **auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "", "content": "text"}, "title"),
        ({"title": "t" * (KNOWLEDGE_TITLE_MAX + 1), "content": "text"}, "title"),
        ({"title": "t", "content": ""}, "content"),
        ({"title": "t", "content": "c" * (KNOWLEDGE_CONTENT_MAX + 1)}, "content"),
        ({"title": "t"}, "content"),
        ({"title": "   ", "content": "text"}, "title"),
    ],
)
def test_knowledge_limits_are_422_naming_the_field(client, auth, agent, body, field):
    response = post(client, f"/api/agents/{agent.id}/knowledge", body, **auth)
    assert field in fields(response)
    assert not KnowledgeEntry.objects.exists()


def test_an_agent_holds_a_bounded_number_of_entries(client, auth, agent, settings):
    from agents import models

    for n in range(models.KNOWLEDGE_ENTRIES_MAX):
        KnowledgeEntry.objects.create(agent=agent, title=f"E{n}", content="x")
    response = post(
        client, f"/api/agents/{agent.id}/knowledge", {"title": "t", "content": "c"}, **auth
    )
    assert "__all__" in fields(response)


def test_builder_page_adds_edits_and_deletes_knowledge(client, user, agent, other_user):
    client.force_login(user)
    added = client.post(
        f"/agents/{agent.pk}/knowledge/new/", {"title": "Parking", "content": "Free parking."}
    )
    assert added.status_code == 302
    entry = KnowledgeEntry.objects.get(agent=agent)
    page = client.get(f"/agents/{agent.pk}/edit/").content.decode()
    assert "Parking" in page and "Free parking." in page

    edited = client.post(
        f"/agents/{agent.pk}/knowledge/{entry.pk}/edit/",
        {"title": "Parking", "content": "Parking costs 2 euros."},
    )
    assert edited.status_code == 302
    assert KnowledgeEntry.objects.get(pk=entry.pk).passages.get().text == "Parking costs 2 euros."

    client.force_login(other_user)
    assert client.post(f"/agents/{agent.pk}/knowledge/{entry.pk}/delete/").status_code == 404
    client.force_login(user)
    assert client.post(f"/agents/{agent.pk}/knowledge/{entry.pk}/delete/").status_code == 302
    assert not KnowledgeEntry.objects.exists()


def test_admin_shows_routes_and_knowledge(admin_client, agent):
    KnowledgeEntry.objects.create(agent=agent, title="Menu", content="Soup of the day.")
    page = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert 'name="routes"' in page and "Soup of the day." in page
    listing = admin_client.get("/admin/agents/knowledgeentry/").content.decode()
    assert "Menu" in listing
