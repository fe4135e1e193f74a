"""Fake Twilio REST API: create a call and update one (hang up), as api.twilio.com does.

Speaks the 2010-04-01 wire format the twilio SDK uses:

* ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` (form-encoded ``To``,
  ``From``, ``Url``, ``StatusCallback``, ``StatusCallbackEvent``...) → 201 and
  the call resource (``sid`` ``CA`` + 32 hex, ``status`` ``queued``);
* ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` with
  ``Status=completed`` → 200 and the call, now ``completed``; with ``Twiml``
  (new instructions, e.g. ``<Dial>`` for a transfer) → 200, the TwiML kept
  on the call as ``twiml``. Inbound calls are known once the test registers
  them with :func:`register_call` (Twilio knows every call; the fake only
  those it created or was told of).

HTTP basic auth must be the account SID and auth token the fake was made with
(else 401, error 20003). Errors are Twilio's JSON error bodies. ``options``:
``owned_numbers`` (``From`` must be one of them, else 400 error 21210). The
``misbehave`` modes of :class:`FakeServer` apply to every request.
"""

import base64
import re
import secrets
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.server import FakeHandler, FakeServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
CALLS = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Calls\.json$")
CALL = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Calls/(?P<sid>CA[0-9a-f]{32})\.json$"
)
DATE = "Tue, 01 Sep 2026 12:00:00 +0000"


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class TwilioHandler(FakeHandler):
    def do_POST(self) -> None:
        request = self.record()
        if self.misbehave():
            return
        if not self._authorized():
            self.send_json(401, twilio_error(401, 20003, "Authenticate"))
            return
        form = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(request.body.decode()).items()}
        created, updated = CALLS.match(request.path), CALL.match(request.path)
        if created and created["account"] == ACCOUNT_SID:
            self._create(form)
        elif updated and updated["account"] == ACCOUNT_SID:
            self._update(updated["sid"], form)
        else:
            message = f"The requested resource {request.path} was not found"
            self.send_json(404, twilio_error(404, 20404, message))

    def _authorized(self) -> bool:
        expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        return self.headers.get("Authorization", "") == f"Basic {expected}"

    def _create(self, form: dict[str, Any]) -> None:
        for name, code in (("To", 21201), ("From", 21213), ("Url", 21205)):
            if not form.get(name):
                self.send_json(400, twilio_error(400, code, f"No '{name}' number is specified"))
                return
        owned = self.fake.options.get("owned_numbers")
        if owned is not None and form["From"] not in owned:
            message = (
                f"The source phone number provided, {form['From']}, is not yet verified "
                "for your account. You may only make calls from phone numbers that you've "
                "verified or purchased from Twilio."
            )
            self.send_json(400, twilio_error(400, 21210, message))
            return
        sid = "CA" + secrets.token_hex(16)
        call = {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "to": form["To"],
            "from": form["From"],
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": DATE,
            "date_updated": DATE,
            "start_time": None,
            "end_time": None,
            "duration": None,
            "price": None,
            "price_unit": "USD",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json",
        }
        self.fake.options.setdefault("calls", {})[sid] = call
        self.send_json(201, call)

    def _update(self, sid: str, form: dict[str, Any]) -> None:
        call = self.fake.options.get("calls", {}).get(sid)
        if call is None:
            path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"
            self.send_json(
                404, twilio_error(404, 20404, f"The requested resource {path} was not found")
            )
            return
        if "Status" in form:
            call.update(status=form["Status"], date_updated=DATE)
        if "Twiml" in form:
            call.update(twiml=form["Twiml"], date_updated=DATE)
        self.send_json(200, call)


def register_call(fake: FakeServer, sid: str, to: str, from_: str) -> None:
    """Make an inbound call ``sid`` known to the fake, as it is to Twilio."""
    fake.options.setdefault("calls", {})[sid] = {
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "to": to,
        "from": from_,
        "status": "in-progress",
        "direction": "inbound",
        "api_version": "2010-04-01",
        "date_created": DATE,
        "date_updated": DATE,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json",
    }


def twilio_server() -> FakeServer:
    return FakeServer(TwilioHandler)
