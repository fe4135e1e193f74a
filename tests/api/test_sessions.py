"""Call sessions over REST: start, list and filter, detail, end, turns, transcript, stats."""

import uuid

import pytest
from django.test import override_settings

from agents.models import Agent
from calls.models import CallSession
from calls.services import end_session, start_session
from calls.turns import record_turn
from tests.conftest import jwt_headers

from .helpers import fields, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def call(agent, user):
    """An ended session with two pipeline turns (a question and its answer)."""
    session = start_session(agent, user)
    record_turn(str(session.id), 1, "user", text="What is my balance?", stt_ms=300)
    record_turn(
        str(session.id),
        1,
        "agent",
        text="It is 42 euros.",
        intent="question",
        classify_ms=120,
        first_token_ms=200,
        first_audio_ms=450,
        total_ms=900,
    )
    record_turn(str(session.id), 2, "user", text="Thanks, bye", stt_ms=500)
    record_turn(
        str(session.id),
        2,
        "agent",
        text="Goodbye",
        intent="farewell",
        first_audio_ms=350,
        total_ms=700,
        interrupted=True,
    )
    return end_session(session, reason="hangup")


def test_start_returns_an_absolute_ws_url(client, auth, agent):
    response = post(client, f"/api/agents/{agent.id}/sessions", **auth)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "active"
    assert body["agent"] == {"id": agent.id, "name": "Support line"}
    assert body["ws_url"] == f"ws://testserver/ws/voice/{body['id']}/"
    assert CallSession.objects.get(pk=body["id"]).user == agent.owner


def test_ws_url_is_wss_behind_https(client, auth, agent):
    response = post(client, f"/api/agents/{agent.id}/sessions", secure=True, **auth)
    assert response.json()["ws_url"].startswith("wss://testserver/ws/voice/")


@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    USE_X_FORWARDED_HOST=True,
    ALLOWED_HOSTS=["voice.example.com", "testserver"],
)
def test_ws_url_uses_the_public_host_behind_a_trusted_proxy(client, auth, agent):
    response = post(
        client,
        f"/api/agents/{agent.id}/sessions",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="voice.example.com",
        **auth,
    )
    assert response.json()["ws_url"].startswith("wss://voice.example.com/ws/voice/")


def test_start_for_an_inactive_agent_is_refused(client, auth, agent):
    agent.is_active = False
    agent.save()
    response = post(client, f"/api/agents/{agent.id}/sessions", **auth)
    assert response.status_code == 409
    assert "inactive" in response.json()["detail"]
    assert not CallSession.objects.exists()


def test_start_for_another_users_agent_is_404(client, agent, other_user):
    response = post(client, f"/api/agents/{agent.id}/sessions", **jwt_headers(other_user))
    assert response.status_code == 404


def test_list_filters_by_status_and_agent(client, auth, agent, user, call):
    active = start_session(agent, user)
    listed = client.get("/api/sessions", **auth).json()
    assert listed["count"] == 2
    assert listed["items"][0]["id"] == str(active.id)  # newest first

    only_active = client.get("/api/sessions?status=active", **auth).json()["items"]
    assert [s["id"] for s in only_active] == [str(active.id)]
    assert only_active[0]["ws_url"].endswith(f"/ws/voice/{active.id}/")
    ended = client.get("/api/sessions?status=ended", **auth).json()["items"]
    assert [s["id"] for s in ended] == [str(call.id)]
    assert ended[0]["ws_url"] is None
    assert client.get(f"/api/sessions?agent={agent.id}", **auth).json()["count"] == 2
    assert client.get(f"/api/sessions?agent={agent.id + 1}", **auth).json()["count"] == 0
    assert "status" in fields(client.get("/api/sessions?status=paused", **auth))


def test_list_hides_other_users_sessions(client, call, other_user):
    assert client.get("/api/sessions", **jwt_headers(other_user)).json()["count"] == 0


def test_detail_has_the_latency_summary(client, auth, call):
    body = client.get(f"/api/sessions/{call.id}", **auth).json()
    assert body["status"] == "ended"
    assert body["end_reason"] == "hangup"
    assert body["turn_count"] == 4
    assert body["metrics"]["total_ms"]["max"] == 900
    assert body["metrics"]["stt_ms"]["p50"] == 400


def test_end_is_idempotent(client, auth, agent, user):
    session = start_session(agent, user)
    first = post(client, f"/api/sessions/{session.id}/end", **auth)
    assert first.status_code == 200
    assert first.json()["status"] == "ended"
    assert first.json()["end_reason"] == "ended_via_api"
    second = post(client, f"/api/sessions/{session.id}/end", **auth)
    assert second.status_code == 200
    assert second.json()["ended_at"] == first.json()["ended_at"]


def test_turns_in_order_with_timings(client, auth, call):
    turns = client.get(f"/api/sessions/{call.id}/turns", **auth).json()
    assert [(t["speaker"], t["text"]) for t in turns] == [
        ("user", "What is my balance?"),
        ("agent", "It is 42 euros."),
        ("user", "Thanks, bye"),
        ("agent", "Goodbye"),
    ]
    assert turns[1]["intent"] == "question"
    assert turns[1]["first_audio_ms"] == 450
    assert turns[3]["interrupted"] is True


def test_transcript_json_and_txt(client, auth, call):
    exported = client.get(f"/api/sessions/{call.id}/transcript", **auth).json()
    assert exported["session"]["id"] == str(call.id)
    assert [t["text"] for t in exported["turns"]][-1] == "Goodbye"

    txt = client.get(f"/api/sessions/{call.id}/transcript?format=txt", **auth)
    assert txt.status_code == 200
    assert txt["Content-Type"].startswith("text/plain")
    assert txt["Content-Disposition"] == f'attachment; filename="transcript-{call.id}.txt"'
    text = txt.content.decode()
    assert "Caller: What is my balance?" in text
    assert "Agent: Goodbye [interrupted]" in text
    assert "format" in fields(client.get(f"/api/sessions/{call.id}/transcript?format=pdf", **auth))


def test_another_users_session_is_404_everywhere(client, call, other_user):
    stranger = jwt_headers(other_user)
    base = f"/api/sessions/{call.id}"
    for url in (base, f"{base}/turns", f"{base}/transcript", f"{base}/transcript?format=txt"):
        assert client.get(url, **stranger).status_code == 404, url
    assert post(client, f"{base}/end", **stranger).status_code == 404


def test_unknown_or_malformed_session_id(client, auth):
    assert client.get(f"/api/sessions/{uuid.uuid4()}", **auth).status_code == 404
    assert "session_id" in fields(client.get("/api/sessions/not-a-uuid", **auth))


def test_session_endpoints_need_a_token(client, agent, call):
    base = f"/api/sessions/{call.id}"
    for url in ("/api/sessions", base, f"{base}/turns", f"{base}/transcript", "/api/stats"):
        assert client.get(url).status_code == 401, url
    assert post(client, f"{base}/end").status_code == 401
    assert post(client, f"/api/agents/{agent.id}/sessions").status_code == 401


def test_stats_count_only_the_users_data(client, auth, agent, user, other_user, call):
    start_session(agent, user)
    other_agent = Agent.objects.create(owner=other_user, name="Theirs")
    start_session(other_agent, other_user)
    stats = client.get("/api/stats", **auth).json()
    assert stats["agents"] == {"total": 1, "active": 1}
    assert stats["sessions"] == {"total": 2, "active": 1, "ended": 1, "error": 0}
    assert stats["turns"] == {"total": 4, "user": 2, "agent": 2, "interrupted": 1}
    assert stats["latency"]["first_audio_ms"] == {"p50": 400, "p95": 445, "max": 450}
    assert stats["latency"]["classify_ms"] == {"p50": 120, "p95": 120, "max": 120}
