"""Recordings over HTTP: the API and the session page's route serve the WAV
whole or by byte range, only to the session's owner; the agent's switch; the
admin's link; a deleted session takes its recording's file with it."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from calls.models import CallSession, Recording
from calls.services import start_session
from tests.conftest import PASSWORD, jwt_headers
from tests.recordings import channel_energy, make_recording

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded(agent, user, tmp_path: Path) -> Iterator[Recording]:
    session = start_session(agent, user)
    recording = make_recording(session, tmp_path)
    yield recording
    # Deleting the row would not remove the file: on_commit never runs in a test transaction.
    recording.file.storage.delete(str(recording.file.name))


def url(recording: Recording) -> str:
    return f"/api/sessions/{recording.session_id}/recording"


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_whole_recording_is_a_stereo_wav_as_long_as_the_call(client, auth, recorded):
    response = client.get(url(recorded), **auth)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Accept-Ranges"] == "bytes"
    data = body(response)
    assert int(response["Content-Length"]) == len(data) == recorded.size_bytes
    energy = channel_energy(data)
    assert abs(energy.seconds - 6.0) < 0.01 and energy.rate == recorded.sample_rate == 16000
    assert (energy.span("left", 1.0, 2.0) > 0.05).all()
    assert (energy.span("right", 3.0, 5.0) > 0.05).all()


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),  # the first bytes: the WAV header
        ("bytes=100000-100999", 100000, 100999),  # a middle range
        ("bytes=100000-", 100000, None),  # from there to the end
        ("bytes=-500", -500, None),  # the last 500 bytes
        ("bytes=0-99999999", 0, None),  # past the end: up to the end
    ],
)
def test_a_range_is_answered_206_with_those_bytes(client, auth, recorded, header, first, last):
    whole = body(client.get(url(recorded), **auth))
    size = len(whole)
    start = first % size
    end = size - 1 if last is None else last
    response = client.get(url(recorded), HTTP_RANGE=header, **auth)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{size}"
    assert response["Accept-Ranges"] == "bytes"
    part = body(response)
    assert part == whole[start : end + 1]
    assert int(response["Content-Length"]) == len(part)


@pytest.mark.parametrize("header", ["bytes=99999999-", "bytes=-0"])
def test_an_unsatisfiable_range_is_416(client, auth, recorded, header):
    response = client.get(url(recorded), HTTP_RANGE=header, **auth)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{recorded.size_bytes}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "items=0-9", "bytes=9-1", "nonsense"])
def test_a_range_this_server_does_not_serve_gets_the_whole_file(client, auth, recorded, header):
    response = client.get(url(recorded), HTTP_RANGE=header, **auth)
    assert response.status_code == 200
    assert len(body(response)) == recorded.size_bytes


def test_a_session_without_recording_is_404(client, auth, agent, user):
    session = start_session(agent, user)
    response = client.get(f"/api/sessions/{session.id}/recording", **auth)
    assert response.status_code == 404
    assert "recording" in response.json()["detail"]


def test_another_users_recording_is_404(client, recorded, other_user):
    response = client.get(url(recorded), **jwt_headers(other_user))
    assert response.status_code == 404
    assert client.get(url(recorded)).status_code == 401


def test_the_session_page_route_serves_the_owner_by_cookie(client, recorded, user, other_user):
    page_url = f"/sessions/{recorded.session_id}/recording.wav"
    client.login(username=other_user.username, password=PASSWORD)
    assert client.get(page_url).status_code == 404
    client.login(username=user.username, password=PASSWORD)
    response = client.get(page_url, HTTP_RANGE="bytes=0-3")
    assert response.status_code == 206
    assert body(response) == b"RIFF"
    page = client.get(f"/sessions/{recorded.session_id}/")
    assert b'id="recording-player"' in page.content
    assert b'data-seek="3.000"' in page.content  # the agent's turn 1 begins at 3 s


def test_a_recording_whose_file_is_gone_is_404(client, auth, recorded):
    recorded.file.storage.delete(recorded.file.name)
    assert client.get(url(recorded), **auth).status_code == 404


def test_deleting_the_session_deletes_the_file(
    agent, user, tmp_path, django_capture_on_commit_callbacks
):
    recording = make_recording(start_session(agent, user), tmp_path)
    storage, name = recording.file.storage, recording.file.name
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        CallSession.objects.filter(pk=recording.session_id).delete()
    assert not storage.exists(name)
    assert not Recording.objects.exists()


def test_the_agent_switch_through_the_api(client, auth):
    created = client.post(
        "/api/agents", {"name": "Recorded line"}, content_type="application/json", **auth
    ).json()
    assert created["record_calls"] is False
    changed = client.patch(
        f"/api/agents/{created['id']}",
        {"record_calls": True},
        content_type="application/json",
        **auth,
    )
    assert changed.status_code == 200 and changed.json()["record_calls"] is True
    refused = client.patch(
        f"/api/agents/{created['id']}",
        {"record_calls": "sometimes"},
        content_type="application/json",
        **auth,
    )
    assert refused.status_code == 422


def test_the_admin_links_the_recording(client, make_user, recorded):
    make_user("boss", is_staff=True, is_superuser=True)
    client.login(username="boss", password=PASSWORD)
    page = client.get(f"/admin/calls/callsession/{recorded.session_id}/change/")
    link = f"/admin/calls/callsession/{recorded.session_id}/recording.wav"
    assert link.encode() in page.content
    response = client.get(link, HTTP_RANGE="bytes=0-3")
    assert response.status_code == 206 and body(response) == b"RIFF"
    unrecorded = start_session(recorded.session.agent, recorded.session.user)
    assert (
        b"recording.wav"
        not in client.get(f"/admin/calls/callsession/{unrecorded.id}/change/").content
    )
