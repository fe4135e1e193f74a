"""The interactive API reference works offline and lists every endpoint of design.md."""

import pytest

EXPECTED = {
    "/api/auth/register": {"post"},
    "/api/auth/login": {"post"},
    "/api/auth/refresh": {"post"},
    "/api/auth/logout": {"post"},
    "/api/auth/logout-all": {"post"},
    "/api/auth/me": {"get"},
    "/api/agents": {"get", "post"},
    "/api/agents/{agent_id}": {"get", "put", "patch", "delete"},
    "/api/agents/{agent_id}/sessions": {"post"},
    "/api/agents/{agent_id}/calls": {"post"},
    "/api/sessions": {"get"},
    "/api/sessions/{session_id}": {"get"},
    "/api/sessions/{session_id}/end": {"post"},
    "/api/sessions/{session_id}/ticket": {"post"},
    "/api/sessions/{session_id}/turns": {"get"},
    "/api/sessions/{session_id}/transcript": {"get"},
    "/api/stats": {"get"},
    "/api/health": {"get"},
    "/api/health/ready": {"get"},
    "/api/agents/{agent_id}/scenarios": {"get", "post"},
    "/api/sessions/{session_id}/scenario": {"post"},
    "/api/scenarios/{scenario_id}": {"get", "delete"},
    "/api/scenarios/{scenario_id}/run": {"post"},
    "/api/scenario-runs/{run_id}": {"get"},
}


def test_swagger_ui_uses_local_assets(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert b"/static/ninja/swagger-ui-bundle.js" in page.content
    assert b"cdn." not in page.content


@pytest.mark.django_db
def test_openapi_lists_every_endpoint_with_bearer_auth(client):
    schema = client.get("/api/openapi.json").json()
    assert {path: set(ops) for path, ops in schema["paths"].items()} == EXPECTED
    assert schema["components"]["securitySchemes"]["JWTAuth"]["scheme"] == "bearer"
    me = schema["paths"]["/api/auth/me"]["get"]
    assert "401" in me["responses"]
