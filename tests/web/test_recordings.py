"""Recordings in real Chromium: a recorded browser call (the fake microphone's
question, the real workers' spoken answer) stored as a stereo WAV with each
party on its channel at its moments; the session page's player, which a click
on a turn of the transcript seeks."""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from agents.models import Agent
from calls.models import CallSession, Recording
from calls.services import start_session
from tests.pipeline.conftest import wait_until_disconnected
from tests.recordings import Energy, channel_energy, make_recording

from .conftest import DATA, LEAD_SILENCE_S, TRAIL_SILENCE_S, log_in
from .test_call import CONVERSATION_TIMEOUT_MS, start_call

pytestmark = pytest.mark.django_db(transaction=True)
LOUD = 0.01
QUIET = 0.003
PLAYER = "document.getElementById('recording-player')"
CALL = "document.getElementById('call')"


def loud_stretch(values: np.ndarray, before: float) -> tuple[float, float]:
    """The start of the first loud window and the end of the last one before ``before`` s."""
    loud = np.flatnonzero(values[: round(before / 0.1)] > LOUD)
    assert loud.size, "nothing loud on this channel"
    return loud[0] * 0.1, (loud[-1] + 1) * 0.1


def wait_for(page: Page, expression: str, timeout_s: float = 10.0) -> float:
    """Poll ``expression`` in the page until true; the moment it was seen.

    Not ``wait_for_function``: it evaluates its predicate as a string inside the
    page, which the Content-Security-Policy (no unsafe-eval) forbids.
    """
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        time.sleep(0.02)
    return time.monotonic()


def question_seconds() -> float:
    with wave.open(str(DATA / "question_16k.wav"), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def stored(session: CallSession, timeout: float = 30.0) -> Energy:
    deadline = time.monotonic() + timeout
    while (recording := Recording.objects.filter(session=session).first()) is None:
        assert time.monotonic() < deadline, "the recording was not stored"
        time.sleep(0.2)
    with recording.file.open("rb") as handle:
        return channel_energy(handle.read())


def test_a_recorded_browser_call(page: Page, make_user, celery_workers) -> None:
    user = make_user("recorded")
    Agent.objects.create(
        owner=user,
        name="Recorded web line",
        system_prompt="You are a helpful assistant. Answer in one short sentence.",
        record_calls=True,
    )
    log_in(page, "recorded")
    session = start_call(page, "Recorded web line")
    call = page.locator("#call")
    began = wait_for(page, f"{CALL}.dataset.state === 'connected'")
    first_audio = (
        wait_for(page, f"{CALL}.dataset.audioBytes !== '0'", CONVERSATION_TIMEOUT_MS / 1000) - began
    )
    expect(call).not_to_have_attribute("data-replies", "0", timeout=CONVERSATION_TIMEOUT_MS)
    audio_s = int(call.get_attribute("data-audio-bytes") or 0) / 2 / 22050
    # Let the page play the answer to its end, then hang up.
    time.sleep(max(0.0, began + first_audio + audio_s + 1.0 - time.monotonic()))
    page.get_by_role("button", name="Hang up").click()
    ended = wait_for(page, f"{CALL}.dataset.state === 'ended'") - began
    wait_until_disconnected([str(session.id)])

    energy = stored(session)
    assert energy.rate == 16000
    assert abs(energy.seconds - ended) < 0.5, (energy.seconds, ended)
    # Chromium loops the fake microphone's file: a slow answer may hear the
    # question again. Only the first time round is checked.
    loop_s = LEAD_SILENCE_S + question_seconds() + TRAIL_SILENCE_S
    # The fake microphone's question, after its lead silence, on the left only.
    spoke, stopped = loud_stretch(energy.left, loop_s)
    assert LEAD_SILENCE_S - 0.5 < spoke < LEAD_SILENCE_S + 1.5, spoke
    assert abs((stopped - spoke) - question_seconds()) < 0.8, (spoke, stopped)
    assert (energy.span("right", spoke, stopped) < QUIET).all()
    # The spoken answer on the right, from when its audio reached the page, for
    # as long as that audio lasts (Piper pads each sentence with a little silence).
    answered, finished = loud_stretch(energy.right, loop_s)
    assert answered > stopped
    assert abs(answered - first_audio) < 0.5, (answered, first_audio)
    assert audio_s - 1.0 < finished - answered < audio_s + 0.3, (answered, finished, audio_s)
    assert (energy.span("left", answered, finished) < QUIET).all()


@pytest.fixture
def recorded_session(make_user, tmp_path: Path) -> Iterator[CallSession]:
    user = make_user("listener")
    agent = Agent.objects.create(owner=user, name="Replayed line", record_calls=True)
    session = start_session(agent, user)
    make_recording(session, tmp_path)
    yield session
    session.delete()  # with its recording's file (committed at once: no test transaction)


def test_the_session_page_plays_the_recording_from_the_turn_clicked(
    page: Page, recorded_session: CallSession, screenshot
) -> None:
    log_in(page, "listener")
    page.goto(f"/sessions/{recorded_session.id}/")
    player = page.locator("#recording-player")
    expect(player).to_be_visible()
    # Chromium read the WAV's header through the range-serving route.
    wait_for(page, f"{PLAYER}.readyState >= 1")
    assert abs(page.evaluate(f"{PLAYER}.duration") - 6.0) < 0.05

    agent_turn = page.locator("#transcript li.bubble.agent").first
    agent_turn.locator(".text").click()
    assert 3.0 <= page.evaluate(f"{PLAYER}.currentTime") < 3.8
    expect(agent_turn).to_have_class("bubble agent playing")

    user_turn = page.locator("#transcript li.bubble.user").first
    user_turn.get_by_role("button", name="Play the recording from 0:01").click()
    assert 1.0 <= page.evaluate(f"{PLAYER}.currentTime") < 1.8
    expect(agent_turn).not_to_have_class("bubble agent playing")
    screenshot(page, "session-recording")


def test_a_session_without_recording_has_no_player(page: Page, make_user) -> None:
    user = make_user("unrecorded")
    agent = Agent.objects.create(owner=user, name="Plain line")
    session = start_session(agent, user)
    log_in(page, "unrecorded")
    page.goto(f"/sessions/{session.id}/")
    expect(page.locator("#session-status")).to_be_visible()
    expect(page.locator("#recording-player")).to_have_count(0)
