"""Every endpoint the schema marks as secured answers 401 without a valid access token."""

import uuid
from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from voiceproj.api import api

pytestmark = pytest.mark.django_db

PATH_VALUES = {"{agent_id}": "1", "{session_id}": str(uuid.uuid4())}


def secured_operations() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema(path_prefix="/api/")
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if operation.get("security"):
                for placeholder, value in PATH_VALUES.items():
                    path = path.replace(placeholder, value)
                found.append((method, path))
    return sorted(found)


def test_the_api_is_secured_by_default():
    public = {"/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/auth/logout"}
    schema = api.get_openapi_schema(path_prefix="/api/")
    unsecured = {
        path
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        if not operation.get("security")
    }
    assert unsecured == public | {"/api/health"}


@pytest.fixture
def bad_tokens(user) -> dict[str, str | None]:
    expired = AccessToken.for_user(user)
    expired.set_exp(lifetime=timedelta(seconds=-1))
    other_key = AccessToken.for_user(user)
    forged = str(other_key)[:-4] + ("AAAA" if not str(other_key).endswith("AAAA") else "BBBB")
    return {
        "missing": None,
        "garbage": "Bearer not-a-jwt",
        "expired": f"Bearer {expired}",
        "forged signature": f"Bearer {forged}",
        "refresh instead of access": f"Bearer {RefreshToken.for_user(user)}",
        "empty bearer": "Bearer ",
        "wrong scheme": f"Token {AccessToken.for_user(user)}",
    }


@pytest.mark.parametrize(("method", "path"), secured_operations())
def test_secured_endpoint_rejects_bad_tokens(client, bad_tokens, method, path):
    for label, header in bad_tokens.items():
        extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
        response = getattr(client, method)(path, {}, content_type="application/json", **extra)
        assert response.status_code == 401, (label, response.content)
        assert response.json()["detail"], label
        assert response["WWW-Authenticate"].startswith("Bearer")
