"""Telephony fixtures: numbers, signed webhook requests (the fake Twilio REST API and
its settings are ``twilio_fake`` in tests/conftest.py).

Webhooks are posted the way Twilio posts them: form-encoded, with an
``X-Twilio-Signature`` computed by the twilio SDK's ``RequestValidator`` over
the exact URL the view sees.
"""

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from accounts.models import User
from agents.models import Agent
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

AGENT_NUMBER = "+14155550100"
CALLER_NUMBER = "+447700900123"
VOICE = "/telephony/twilio/voice"
STATUS = "/telephony/twilio/status"


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def call_params(to: str = AGENT_NUMBER, caller: str = CALLER_NUMBER, **extra: str) -> dict:
    """The form Twilio posts to the voice webhook for an incoming call."""
    params = {
        "CallSid": new_call_sid(),
        "AccountSid": ACCOUNT_SID,
        "From": caller,
        "To": to,
        "Caller": caller,
        "Called": to,
        "Direction": "inbound",
        "CallStatus": "ringing",
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


@pytest.fixture
def phone_agent(user: User) -> Agent:
    return Agent.objects.create(owner=user, name="Front desk", phone_number=AGENT_NUMBER)


def post_form(client: Client, path: str, params: dict, **extra: Any) -> Any:
    """POST ``params`` form-encoded, as Twilio does."""
    return client.post(
        path, urlencode(params), content_type="application/x-www-form-urlencoded", **extra
    )


@pytest.fixture
def twilio_post(client: Client) -> Callable[..., Any]:
    """``twilio_post(path, params)``: a webhook request signed for the URL the view sees.

    ``url`` overrides the URL signed (what Twilio requested, e.g. a public
    https URL in front of a proxy); ``token`` the key it is signed with.
    """

    def send(
        path: str,
        params: dict,
        *,
        url: str | None = None,
        token: str = AUTH_TOKEN,
        secure: bool = False,
        **extra: Any,
    ) -> Any:
        signed_url = url or f"{'https' if secure else 'http'}://testserver{path}"
        signature = RequestValidator(token).compute_signature(signed_url, params)
        return post_form(
            client, path, params, secure=secure, HTTP_X_TWILIO_SIGNATURE=signature, **extra
        )

    return send
