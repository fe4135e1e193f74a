"""Whatever a client sends, the API answers JSON with a clear message and never a 500."""

import pytest

from .helpers import fields

pytestmark = pytest.mark.django_db

GARBAGE_BODIES = [
    b"{not json",
    b"",
    b"null",
    b"[1, 2]",
    b'"a string"',
    b"42",
    b'{"name": {"nested": true}}',
    b'{"name": "nul\\u0000byte", "username": "nul\\u0000", "refresh": "x\\u0000"}',
    b'{"intents": "greeting", "classifier_temperature": "hot", "is_active": "maybe"}',
    b'{"intents": [1, null, {"name": 5}]}',
    b"\xff\xfe\x00garbage",
    b'{"name": "' + b"x" * 200_000 + b'"}',
]


@pytest.fixture
def writable_endpoints(agent, user):
    from calls.services import start_session

    session = start_session(agent, user)
    return [
        ("post", "/api/auth/register"),
        ("post", "/api/auth/login"),
        ("post", "/api/auth/refresh"),
        ("post", "/api/auth/logout"),
        ("post", "/api/agents"),
        ("put", f"/api/agents/{agent.id}"),
        ("patch", f"/api/agents/{agent.id}"),
        ("post", f"/api/agents/{agent.id}/sessions"),
        ("post", f"/api/sessions/{session.id}/end"),
    ]


@pytest.mark.parametrize("body", GARBAGE_BODIES, ids=range(len(GARBAGE_BODIES)))
def test_garbage_bodies_get_json_client_errors(client, auth, writable_endpoints, body):
    for method, url in writable_endpoints:
        response = getattr(client, method)(url, body, content_type="application/json", **auth)
        assert response.status_code < 500, (method, url, response.content[:300])
        if response.status_code >= 400:
            assert response["Content-Type"] == "application/json; charset=utf-8"
            assert response.json()["detail"], (method, url)


def test_malformed_json_says_so(client, auth):
    response = client.post("/api/agents", b"{oops", content_type="application/json", **auth)
    assert response.status_code == 400
    assert response.json() == {"detail": "The request body is not valid JSON."}


@pytest.mark.parametrize("body", [b"false", b"null", b"[]", b'"x"', b"1", b"[{}]"])
def test_a_body_that_is_not_a_json_object_is_refused(client, auth, agent, body):
    # Found by schemathesis: Ninja took any JSON that is not an object as an
    # empty body, so a PATCH of `false` answered 200 and changed nothing.
    url = f"/api/agents/{agent.id}"
    for method in ("patch", "put"):
        response = getattr(client, method)(url, body, content_type="application/json", **auth)
        assert response.status_code == 400, (method, response.content)
        assert response.json() == {"detail": "The request body must be a JSON object."}
    response = client.post("/api/auth/login", body, content_type="application/json")
    assert response.status_code == 400


def test_nul_character_is_a_422_not_a_database_error(client, auth):
    response = client.post(
        "/api/agents", {"name": "bad\x00name"}, content_type="application/json", **auth
    )
    assert "NUL" in fields(response)["name"]


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "page_size=0", "page=99999999999", "search=%00"],
)
def test_odd_list_queries_never_500(client, auth, agent, query):
    for url in ("/api/agents", "/api/sessions"):
        response = client.get(f"{url}?{query}", **auth)
        assert response.status_code in (200, 422), (url, query, response.content[:200])


@pytest.mark.parametrize("url", ["/api/agents", "/api/sessions"])
def test_a_page_past_what_the_database_can_offset_is_a_field_error(client, auth, url):
    # Found by schemathesis: page=10**20 overflowed PostgreSQL's OFFSET (a
    # DataError), answered with a 422 of the wrong shape and a message about
    # characters that cannot be stored.
    response = client.get(f"{url}?page={10**20}&page_size=50", **auth)
    assert "page" in fields(response)
    assert client.get(f"{url}?page={2**31 - 1}&page_size=100", **auth).json()["items"] == []


def test_unknown_agent_filter_values(client, auth):
    assert client.get("/api/sessions?agent=abc", **auth).status_code == 422
    assert client.get("/api/sessions?agent=99999999999999999999", **auth).status_code == 422


def test_unknown_api_paths_are_json_404s(client, auth):
    for url in ("/api/nope", "/api/agents/1/unknown"):
        response = client.get(url, **auth)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}


def test_wrong_method_is_a_json_405_naming_the_allowed_ones(client, auth):
    response = client.delete("/api/health", **auth)
    assert response.status_code == 405
    assert response.json() == {"detail": "Method DELETE is not allowed here; use GET."}
    assert response["Allow"] == "GET"


def test_oversized_body_is_413(client, settings):
    body = b'{"username": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'
    response = client.post("/api/auth/login", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is too large."}


def test_missing_body_is_named_body(client):
    response = client.post("/api/auth/login", b"", content_type="application/json")
    assert fields(response) == {"body": "Field required"}
