"""Per-user quotas on starting calls over REST: live calls at once and sessions per hour.

The hour's count lives in the real Redis of ``settings.REDIS_URL``, as it does
for every web process in production.
"""

import pytest

from agents.models import Agent
from calls.models import CallSession
from tests.conftest import jwt_headers

from .helpers import post

pytestmark = pytest.mark.django_db


def start(client, agent: Agent, headers: dict[str, str]):
    return post(client, f"/api/agents/{agent.id}/sessions", **headers)


def test_a_user_at_the_active_call_limit_gets_429_until_a_call_ends(
    client, auth, agent, other_user, settings
):
    settings.VOICE_MAX_ACTIVE_CALLS_PER_USER = 2
    first, second = (start(client, agent, auth) for _ in range(2))
    assert (first.status_code, second.status_code) == (201, 201)

    refused = start(client, agent, auth)
    assert refused.status_code == 429
    assert refused.json() == {
        "detail": "You already have 2 active calls, the most one user may have at once. "
        "End one of them first.",
        "code": "too_many_active_calls",
    }
    assert CallSession.objects.filter(user=agent.owner).count() == 2

    # Another user is not held back by this one.
    other_agent = Agent.objects.create(owner=other_user, name="Elsewhere")
    assert start(client, other_agent, jwt_headers(other_user)).status_code == 201

    ended = post(client, f"/api/sessions/{first.json()['id']}/end", **auth)
    assert ended.status_code == 200
    assert start(client, agent, auth).status_code == 201


def test_sessions_per_hour_answer_429_with_retry_after(client, auth, agent, other_user, settings):
    settings.VOICE_MAX_ACTIVE_CALLS_PER_USER = 0
    settings.VOICE_SESSIONS_PER_HOUR = 2
    assert [start(client, agent, auth).status_code for _ in range(2)] == [201, 201]

    refused = start(client, agent, auth)
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "too_many_sessions_per_hour"
    assert body["detail"].startswith("You started 2 calls within the last hour")
    assert 3590 <= int(refused["Retry-After"]) <= 3600
    assert CallSession.objects.filter(user=agent.owner).count() == 2

    other_agent = Agent.objects.create(owner=other_user, name="Elsewhere")
    assert start(client, other_agent, jwt_headers(other_user)).status_code == 201

    # 0 is no limit: the same user starts calls again at once.
    settings.VOICE_SESSIONS_PER_HOUR = 0
    assert start(client, agent, auth).status_code == 201


def test_the_schema_documents_the_429s(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/agents/{agent_id}/sessions", "/api/agents/{agent_id}/calls"):
        refusal = paths[path]["post"]["responses"]["429"]
        schema = refusal["content"]["application/json"]["schema"]["$ref"]
        assert schema == "#/components/schemas/QuotaErrorOut", path
