"""Sessions' channel, caller number and call SID: the model, the API, the pages, the admin."""

import pytest
from django.core.exceptions import ValidationError

from calls.models import CallSession
from calls.services import start_session
from tests.conftest import PASSWORD

from .helpers import fields

pytestmark = pytest.mark.django_db

CALL_SID = "CA" + "0123456789abcdef" * 2
CALLER = "+447700900123"


@pytest.fixture
def phone_call(agent, user) -> CallSession:
    return CallSession.objects.create(
        agent=agent, user=user, channel="twilio", caller_number=CALLER, call_sid=CALL_SID
    )


@pytest.fixture
def web_call(agent, user) -> CallSession:
    return start_session(agent, user)


def test_web_sessions_have_no_phone_facts(web_call):
    assert (web_call.channel, web_call.caller_number, web_call.call_sid) == ("web", "", "")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("call_sid", "CA123"),
        ("call_sid", "CA" + "0123456789ABCDEF" * 2),  # Twilio's SIDs are lower-case hex
        ("call_sid", "PN" + "0" * 32),
        ("caller_number", "07700900123"),
        ("channel", "fax"),
    ],
)
def test_the_model_validates_phone_facts(phone_call, field, value):
    setattr(phone_call, field, value)
    with pytest.raises(ValidationError) as raised:
        phone_call.full_clean()
    assert set(raised.value.message_dict) == {field}


def test_a_call_sid_belongs_to_one_session(phone_call, agent, user):
    duplicate = CallSession(agent=agent, user=user, channel="twilio", call_sid=CALL_SID)
    with pytest.raises(ValidationError) as raised:
        duplicate.full_clean()
    assert raised.value.messages == ["Another session already holds this Twilio call SID."]
    # Web sessions all have an empty SID: they never collide.
    start_session(agent, user)
    start_session(agent, user)


def test_api_shows_the_channel_number_and_sid(client, auth, phone_call, web_call):
    phone = client.get(f"/api/sessions/{phone_call.id}", **auth).json()
    assert (phone["channel"], phone["caller_number"], phone["call_sid"]) == (
        "twilio",
        CALLER,
        CALL_SID,
    )
    # Twilio holds a phone call's one connection: there is no socket to join.
    assert phone["ws_url"] is None
    web = client.get(f"/api/sessions/{web_call.id}", **auth).json()
    assert (web["channel"], web["caller_number"], web["call_sid"]) == ("web", "", "")
    assert web["ws_url"].endswith(f"/ws/voice/{web_call.id}/")


def test_api_lists_filter_by_channel(client, auth, phone_call, web_call):
    def ids(query: str) -> list[str]:
        return [s["id"] for s in client.get(f"/api/sessions{query}", **auth).json()["items"]]

    assert ids("?channel=twilio") == [str(phone_call.id)]
    assert ids("?channel=web") == [str(web_call.id)]
    assert len(ids("")) == 2
    assert ids("?channel=twilio&status=ended") == []
    assert "channel" in fields(client.get("/api/sessions?channel=fax", **auth))


def test_openapi_states_the_new_fields_and_filter(client):
    schema = client.get("/api/openapi.json").json()
    session = schema["components"]["schemas"]["SessionOut"]
    assert {"channel", "caller_number", "call_sid"} <= set(session["required"])
    parameters = schema["paths"]["/api/sessions"]["get"]["parameters"]
    assert "channel" in {p["name"] for p in parameters}


# --- pages -----------------------------------------------------------------------------


@pytest.fixture
def signed_in(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


def test_sessions_list_shows_and_filters_the_channel(signed_in, phone_call, web_call):
    page = signed_in.get("/sessions/")
    html = page.content.decode()
    assert "Phone (Twilio)" in html and CALLER in html
    assert f'href="/call/{phone_call.id}/"' not in html  # nothing to rejoin on a phone call
    assert f'href="/call/{web_call.id}/"' in html

    phones = signed_in.get("/sessions/?channel=twilio")
    assert [s.id for s in phones.context["sessions"]] == [phone_call.id]
    assert b'<option value="twilio" selected>' in phones.content


def test_session_detail_shows_channel_caller_and_sid(signed_in, phone_call, web_call):
    html = signed_in.get(f"/sessions/{phone_call.id}/").content.decode()
    assert "Phone (Twilio)" in html
    assert f'href="tel:{CALLER}"' in html
    assert CALL_SID in html
    assert "Rejoin" not in html

    web = signed_in.get(f"/sessions/{web_call.id}/").content.decode()
    assert "Web" in web and "Call SID" not in web and "Rejoin" in web


def test_the_live_page_of_a_phone_call_sends_you_to_its_record(signed_in, phone_call):
    response = signed_in.get(f"/call/{phone_call.id}/")
    assert response.status_code == 302
    assert response["Location"] == f"/sessions/{phone_call.id}/"


def test_admin_lists_and_filters_by_channel(client, make_user, phone_call, web_call):
    make_user("boss", is_staff=True, is_superuser=True)
    client.login(username="boss", password=PASSWORD)

    phones = client.get("/admin/calls/callsession/?channel__exact=twilio")
    assert phones.context["cl"].result_count == 1
    assert CALL_SID.encode() in phones.content and CALLER.encode() in phones.content
    assert client.get(f"/admin/calls/callsession/?q={CALL_SID}").context["cl"].result_count == 1
    change = client.get(f"/admin/calls/callsession/{phone_call.id}/change/")
    assert CALL_SID.encode() in change.content
    assert b'name="call_sid"' not in change.content  # a fact of the call, not editable
