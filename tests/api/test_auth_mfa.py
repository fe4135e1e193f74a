"""``POST /api/auth/login`` for a user with two-factor authentication (allauth.mfa).

The password alone must not be enough: the API asks for the code the web login
asks for, a TOTP code or an unused recovery code, and checks it with allauth's
own MFA code. The current TOTP code comes from pyotp, independently of allauth.
"""

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from accounts.models import User
from tests.conftest import PASSWORD
from tests.totp import current_code, other_code

from .helpers import fields, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret(user: User) -> str:
    """Give ``user`` an authenticator app and recovery codes, as the web pages do."""
    value = generate_totp_secret()
    TOTP.activate(user, value)
    RecoveryCodes.activate(user)
    return value


@pytest.fixture
def recovery_codes(user: User, secret: str) -> list[str]:
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    return RecoveryCodes(authenticator).get_unused_codes()


def login(client, code=None, username="operator", password=PASSWORD):
    body = {"username": username, "password": password}
    if code is not None:
        body["code"] = code
    return post(client, "/api/auth/login", body)


def assert_refused(response, code: str) -> None:
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["code"] == code
    assert "access" not in body and "refresh" not in body


def test_password_alone_is_refused_with_mfa_required(client, secret):
    response = login(client)
    assert_refused(response, "mfa_required")
    assert "code" in response.json()["detail"]
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert_refused(login(client, code=""), "mfa_required")  # Postman's empty mfa_code


def test_current_totp_code_completes_the_login(client, secret):
    response = login(client, code=current_code(secret))
    assert response.status_code == 200, response.content
    me = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert me.json()["username"] == "operator"


def test_wrong_totp_code_is_refused(client, secret):
    assert_refused(login(client, code=other_code(current_code(secret))), "mfa_invalid")


def test_a_totp_code_cannot_be_replayed(client, secret):
    code = current_code(secret)
    assert login(client, code=code).status_code == 200
    assert_refused(login(client, code=code), "mfa_invalid")


def test_recovery_code_works_once(client, recovery_codes):
    assert login(client, code=recovery_codes[0]).status_code == 200
    assert_refused(login(client, code=recovery_codes[0]), "mfa_invalid")
    assert login(client, code=recovery_codes[1]).status_code == 200


def test_wrong_password_with_a_valid_code_is_invalid_credentials(client, secret):
    code = current_code(secret)
    response = login(client, code=code, password="wrong")
    assert_refused(response, "invalid_credentials")
    assert response.json()["detail"] == "Invalid username or password."
    # The code was not spent on the failed attempt.
    assert login(client, code=code).status_code == 200


def test_repeated_wrong_codes_lock_the_second_factor(client, secret):
    for _ in range(5):  # allauth's ACCOUNT_RATE_LIMITS["login_failed"]: 5 per key
        assert_refused(login(client, code=other_code(current_code(secret))), "mfa_invalid")
    locked = login(client, code=current_code(secret))
    assert locked.status_code == 429
    assert "Too many" in locked.json()["detail"]


def test_code_is_length_bounded(client, secret):
    assert "code" in fields(login(client, code="1" * 33))


def test_a_user_without_mfa_may_send_a_code_or_none(client, user):
    assert login(client).status_code == 200
    assert login(client, code="123456").status_code == 200


def test_openapi_documents_the_code_and_the_reasons(client):
    schema = client.get("/api/openapi.json").json()
    components = schema["components"]["schemas"]
    assert components["LoginIn"]["properties"]["code"]["anyOf"][0]["maxLength"] == 32
    responses = schema["paths"]["/api/auth/login"]["post"]["responses"]
    unauthorized = responses["401"]["content"]["application/json"]["schema"]["$ref"]
    assert components[unauthorized.rsplit("/", 1)[-1]]["required"] == ["detail", "code"]
    assert "429" in responses
