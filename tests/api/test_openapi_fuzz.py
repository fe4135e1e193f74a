"""The REST API against its own OpenAPI schema, fuzzed by schemathesis.

schemathesis reads ``/api/openapi.json`` and sends every operation generated
requests, valid and invalid, over HTTP to Django's ``live_server`` (a real
server thread on the test's PostgreSQL) as a logged-in user who owns an agent
with an active session; half the well-formed ids in paths are those real ones,
so requests reach real objects and not only 404s. Every answer must be no 5xx
and match the schema: a documented status, content type, headers and body,
and invalid input must be refused.

``POST /api/agents/{id}/calls`` dials through the fake Twilio of
``twilio_fake``; ``POST /api/auth/logout`` stays in, since schemathesis never
holds the user's refresh token and cannot log it out. Bounded for CI: a fixed
number of examples per operation, derandomized, no example database.
"""

import uuid
import zlib
from typing import Any

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation.case import Case

from accounts.models import User
from agents.models import Agent
from calls.services import start_session
from tests.conftest import jwt_headers
from tests.fakes.server import FakeServer

AGENT_NUMBER = "+15550100100"
# 20 operations × 25 examples, plus schemathesis's coverage cases: about two
# minutes on 2 cores.
EXAMPLES = 25


def served_openapi() -> dict[str, Any]:
    """``/api/openapi.json`` as the server serves it; rendering it needs no database."""
    response = Client(HTTP_HOST="localhost").get("/api/openapi.json")
    assert response.status_code == 200, response.content
    return response.json()


schema = schemathesis.openapi.from_dict(served_openapi())
schema.config.generation.update(
    # The test sends the user's token itself; schemathesis checks missing and
    # bad tokens on its own (ignored_auth).
    with_security_parameters=False,
    # Unknown query parameters are ignored, as by most HTTP APIs, rather than refused.
    allow_extra_parameters=False,
)


@pytest.fixture
def owned(user: User, agent: Agent) -> dict[str, object]:
    """Ids of the user's own agent (with a number, so it can place calls) and
    active session, keyed by path parameter."""
    agent.phone_number = AGENT_NUMBER
    agent.save(update_fields=["phone_number"])
    return {"agent_id": agent.pk, "session_id": str(start_session(agent, user).id)}


def well_formed(name: str, value: object) -> bool:
    """An id the schema accepts: swapping it keeps a valid request valid."""
    if name == "agent_id":
        return isinstance(value, int) and 1 <= value < 2**63
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def aim_at_owned(case: Case, owned: dict[str, object]) -> None:
    """Swap about half the well-formed ids for the user's own (by a stable hash of
    the generated value, so Hypothesis sees the same request for the same input)."""
    path = case.path_parameters or {}
    for name, own in owned.items():
        generated = path.get(name)
        if well_formed(name, generated) and zlib.crc32(str(generated).encode()) % 2:
            path[name] = own


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # Every example is an HTTP request to a live server; the examples of an
    # operation share its user, agent and session on purpose, like one client.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_every_answer_is_documented_and_no_input_is_a_server_error(
    case: Case, live_server: Any, user: User, owned: dict[str, object], twilio_fake: FakeServer
) -> None:
    aim_at_owned(case, owned)
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": jwt_headers(user)["HTTP_AUTHORIZATION"]},
        # Schema-valid input can still break a rule no JSON Schema states (a
        # weak password, a taken username, a number Twilio would refuse): a
        # documented 422 is the right answer there, not a failure.
        excluded_checks=[positive_data_acceptance],
    )
