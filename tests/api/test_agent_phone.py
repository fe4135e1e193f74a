"""Agents' phone numbers: E.164, normalized, unique; in the API, the builder and the admin."""

import pytest

from agents.models import Agent
from tests.conftest import PASSWORD

from .helpers import builder_form, fields, post

pytestmark = pytest.mark.django_db

NUMBER = "+14155550100"
DUPLICATE = "Another agent already answers this phone number."


def send(client, method, url, body, auth):
    return getattr(client, method)(url, body, content_type="application/json", **auth)


def test_round_trip_through_create_get_patch_put(client, auth):
    created = post(client, "/api/agents", {"name": "Desk", "phone_number": NUMBER}, **auth)
    assert created.status_code == 201, created.content
    url = f"/api/agents/{created.json()['id']}"
    assert created.json()["phone_number"] == NUMBER
    assert client.get(url, **auth).json()["phone_number"] == NUMBER

    patched = send(client, "patch", url, {"phone_number": "+44 20 7946 0958"}, auth)
    assert patched.json()["phone_number"] == "+442079460958"
    assert send(client, "patch", url, {"name": "Desk 2"}, auth).json()["phone_number"] == (
        "+442079460958"
    )  # PATCH leaves unsent fields alone
    assert send(client, "put", url, {"name": "Desk"}, auth).json()["phone_number"] is None


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+1 (415) 555-0100", NUMBER),
        ("+1.415.555.0100", NUMBER),
        (" +14155550100 ", NUMBER),
        ("+4930123456", "+4930123456"),
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_numbers_are_normalized_to_e164(client, auth, typed, stored):
    response = post(client, "/api/agents", {"name": "Desk", "phone_number": typed}, **auth)
    assert response.status_code == 201, response.content
    assert response.json()["phone_number"] == stored
    assert Agent.objects.get().phone_number == stored


@pytest.mark.parametrize("cleared", [None, "", "   "])
def test_an_empty_number_means_none(client, auth, cleared):
    agent = post(client, "/api/agents", {"name": "Desk", "phone_number": NUMBER}, **auth).json()
    url = f"/api/agents/{agent['id']}"
    assert (
        send(client, "patch", url, {"phone_number": cleared}, auth).json()["phone_number"] is None
    )
    assert Agent.objects.get().phone_number is None


@pytest.mark.parametrize(
    "bad",
    [
        "14155550100",  # no +
        "+04155550100",  # country codes do not start with 0
        "+1415555",  # 7 digits
        "+1234567890123456",  # 16 digits
        "+1 415 CALL NOW",
        "+1-415-555-0100 ext 2",
    ],
)
def test_invalid_numbers_are_422_naming_the_field(client, auth, bad):
    response = post(client, "/api/agents", {"name": "Desk", "phone_number": bad}, **auth)
    assert "E.164" in fields(response)["phone_number"]
    assert not Agent.objects.exists()


def test_an_overlong_input_is_422(client, auth):
    response = post(client, "/api/agents", {"name": "Desk", "phone_number": "+1" * 40}, **auth)
    assert "phone_number" in fields(response)


def test_a_number_belongs_to_one_agent(client, auth, user):
    Agent.objects.create(owner=user, name="First", phone_number=NUMBER)
    response = post(client, "/api/agents", {"name": "Second", "phone_number": NUMBER}, **auth)
    assert fields(response) == {"phone_number": DUPLICATE}


def test_another_users_number_is_refused_without_naming_them(client, auth, other_user):
    theirs = Agent.objects.create(owner=other_user, name="Their secret desk", phone_number=NUMBER)
    response = post(
        client, "/api/agents", {"name": "Mine", "phone_number": "+1 415 555 0100"}, **auth
    )
    assert fields(response) == {"phone_number": DUPLICATE}
    body = response.content.decode()
    for secret in ("stranger", "Their secret desk", str(theirs.id)):
        assert secret not in body


def test_patching_an_agent_to_its_own_number_is_fine(client, auth, user):
    agent = Agent.objects.create(owner=user, name="Desk", phone_number=NUMBER)
    url = f"/api/agents/{agent.id}"
    assert send(client, "patch", url, {"phone_number": NUMBER}, auth).status_code == 200
    other = Agent.objects.create(owner=user, name="Other")
    taken = send(client, "patch", f"/api/agents/{other.id}", {"phone_number": NUMBER}, auth)
    assert fields(taken) == {"phone_number": DUPLICATE}
    assert (
        send(
            client, "put", f"/api/agents/{other.id}", {"name": "O", "phone_number": NUMBER}, auth
        ).status_code
        == 422
    )


def test_agents_without_numbers_never_collide(client, auth):
    for name in ("A", "B", "C"):
        assert (
            post(client, "/api/agents", {"name": name, "phone_number": ""}, **auth).status_code
            == 201
        )
    assert Agent.objects.filter(phone_number__isnull=True).count() == 3


def test_the_schema_documents_the_field(client):
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert "phone_number" in schemas["AgentOut"]["required"]
    assert "E.164" in str(schemas["AgentIn"]["properties"]["phone_number"])
    assert "phone_number" in schemas["AgentPatch"]["properties"]


# --- builder page and admin ------------------------------------------------------------


@pytest.fixture
def signed_in(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


def test_builder_page_shows_edits_and_normalizes_the_number(signed_in, user):
    page = signed_in.get("/agents/new/")
    assert b'name="phone_number"' in page.content
    assert b'type="tel"' in page.content

    response = signed_in.post("/agents/new/", builder_form(phone_number="+1 (415) 555-0100"))
    assert response.status_code == 302, response.content
    agent = Agent.objects.get()
    assert agent.phone_number == NUMBER
    assert NUMBER.encode() in signed_in.get(f"/agents/{agent.id}/edit/").content

    signed_in.post(f"/agents/{agent.id}/edit/", builder_form(phone_number=""))
    agent.refresh_from_db()
    assert agent.phone_number is None


def test_builder_page_reports_bad_and_taken_numbers_beside_the_field(signed_in, other_user):
    bad = signed_in.post("/agents/new/", builder_form(phone_number="555-0100"))
    assert bad.status_code == 200
    assert "E.164" in bad.context["form"].errors["phone_number"][0]
    assert b'data-error-for="phone_number"' in bad.content

    Agent.objects.create(owner=other_user, name="Theirs", phone_number=NUMBER)
    taken = signed_in.post("/agents/new/", builder_form(phone_number=NUMBER))
    assert taken.context["form"].errors["phone_number"] == [DUPLICATE]
    assert Agent.objects.count() == 1


def test_admin_lists_searches_and_edits_the_number(client, make_user, user):
    make_user("boss", is_staff=True, is_superuser=True)
    client.login(username="boss", password=PASSWORD)
    agent = Agent.objects.create(owner=user, name="Desk", phone_number=NUMBER)

    listing = client.get("/admin/agents/agent/?q=4155550100")
    assert listing.context["cl"].result_count == 1
    assert NUMBER.encode() in listing.content
    change = client.get(f"/admin/agents/agent/{agent.id}/change/")
    assert b"Telephony" in change.content
    assert b'name="phone_number"' in change.content
