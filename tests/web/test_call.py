"""The call page in real Chromium: WebSocket over the session cookie, the fake
microphone through the AudioWorklet, and (with the real Celery workers) a spoken
conversation whose transcript, reply text and audio reach the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from agents.models import Agent
from calls.models import CallSession, Turn
from tests.pipeline.conftest import wait_until_disconnected

from .conftest import CHROMIUM, log_in

pytestmark = pytest.mark.django_db(transaction=True)
Shot = Callable[[Page, str], Path]
# Model loading and a first reply on 2 shared cores: a ceiling, not an expectation.
CONVERSATION_TIMEOUT_MS = 120_000


def start_call(page: Page, agent_name: str) -> CallSession:
    page.goto("/call/")
    page.get_by_label("Agent").select_option(label=agent_name)
    page.get_by_role("button", name="Start call").click()
    page.wait_for_url("**/call/*-*/")
    return CallSession.objects.get(agent__name=agent_name, status=CallSession.Status.ACTIVE)


def test_call_page_connects_captures_and_hangs_up(page: Page, screenshot: Shot, make_user) -> None:
    """Without workers: the socket opens with the cookie, the mic runs, hang-up ends the call."""
    user = make_user("caller")
    Agent.objects.create(owner=user, name="Quiet line")
    log_in(page, "caller")
    session = start_call(page, "Quiet line")
    call = page.locator("#call")
    expect(call).to_have_attribute("data-state", "connected")
    expect(call).to_have_attribute("data-mic", "on")
    # The fake microphone's question reaches the server's endpointer as 16 kHz PCM16.
    expect(page.locator("#call.caller-speaking")).to_be_attached(timeout=15_000)

    page.get_by_role("button", name="Mute").click()
    expect(call).to_have_attribute("data-mic", "muted")
    expect(page.get_by_role("button", name="Unmute")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "call-connected")

    page.get_by_role("button", name="Hang up").click()
    expect(call).to_have_attribute("data-state", "ended")
    expect(page.locator("#call-status")).to_contain_text("ended")
    wait_until_disconnected([str(session.id)])
    session.refresh_from_db()
    assert session.status == CallSession.Status.ENDED
    page.get_by_role("link", name="View the session record").click()
    expect(page.locator("#session-status")).to_have_text("Ended")


def test_spoken_conversation_in_the_browser(
    page: Page, screenshot: Shot, make_user, celery_workers
) -> None:
    """The fake mic asks a question; the page shows its transcript, the reply, and plays audio."""
    user = make_user("talker")
    Agent.objects.create(
        owner=user,
        name="Helpful line",
        system_prompt="You are a helpful assistant. Answer in one short sentence.",
    )
    log_in(page, "talker")
    session = start_call(page, "Helpful line")
    call = page.locator("#call")
    expect(call).to_have_attribute("data-mic", "on")

    user_bubble = page.locator("#conversation .bubble.user").first
    expect(user_bubble).not_to_have_class("partial", timeout=CONVERSATION_TIMEOUT_MS)
    expect(call).not_to_have_attribute("data-transcripts", "0", timeout=CONVERSATION_TIMEOUT_MS)
    expect(user_bubble.locator(".text")).to_contain_text("library", ignore_case=True)
    agent_bubble = page.locator("#conversation .bubble.agent").first
    expect(agent_bubble.locator(".text")).not_to_be_empty(timeout=CONVERSATION_TIMEOUT_MS)
    expect(call).not_to_have_attribute("data-replies", "0", timeout=CONVERSATION_TIMEOUT_MS)
    expect(call).not_to_have_attribute("data-audio-bytes", "0", timeout=CONVERSATION_TIMEOUT_MS)
    expect(page.locator("#latency-rows tr").first).not_to_contain_text("Appears")
    screenshot(page, "call-conversation")

    page.get_by_role("button", name="Hang up").click()
    expect(call).to_have_attribute("data-state", "ended")
    wait_until_disconnected([str(session.id)])
    speakers = list(
        Turn.objects.filter(session=session).order_by("index").values_list("speaker", flat=True)
    )
    assert speakers[:2] == [Turn.Speaker.USER, Turn.Speaker.AGENT]

    page.goto("/sessions/")
    row = page.locator(f'tr[data-session-id="{session.id}"]')
    expect(row).to_contain_text("Ended")
    expect(row.locator(".turn-count")).not_to_have_text("0")
    row.get_by_role("link", name="Details").click()
    expect(page.locator("#transcript li")).not_to_have_count(0)
    expect(page.locator("#transcript li").first).to_contain_text("library", ignore_case=True)
    screenshot(page, "session-detail-spoken")


def test_denied_microphone_is_explained_and_typing_still_works(
    playwright_instance, daphne_server, make_user, screenshot: Shot
) -> None:
    """A browser that refuses the microphone: the page says so and keeps the text box."""
    user = make_user("no-mic")
    Agent.objects.create(owner=user, name="Typed line")
    # A microphone exists, but the permission prompt is refused as a user who
    # clicked "Block" would.
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--use-fake-device-for-media-stream",
            "--deny-permission-prompts",
        ],
    )
    try:
        page = browser.new_context(base_url=daphne_server.url).new_page()
        log_in(page, "no-mic")
        session = start_call(page, "Typed line")
        call = page.locator("#call")
        expect(call).to_have_attribute("data-mic", "denied")
        expect(page.locator("#call-status")).to_contain_text("Microphone access was denied")
        expect(call).to_have_attribute("data-state", "connected")
        expect(page.get_by_label("Type a message")).to_be_enabled()
        screenshot(page, "call-microphone-denied")
        page.get_by_role("button", name="Hang up").click()
        expect(call).to_have_attribute("data-state", "ended")
        wait_until_disconnected([str(session.id)])
    finally:
        browser.close()


def test_dropped_connection_reconnects(page: Page, make_user) -> None:
    """The socket drops mid-call: the page says so, reconnects and works again."""
    user = make_user("flaky")
    Agent.objects.create(owner=user, name="Flaky line")
    routes: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    def proxy(ws: WebSocketRoute) -> None:
        routes.append((ws, ws.connect_to_server()))

    page.route_web_socket(re.compile(r".*/ws/voice/.*"), proxy)
    log_in(page, "flaky")
    session = start_call(page, "Flaky line")
    call = page.locator("#call")
    expect(call).to_have_attribute("data-state", "connected")

    client_side, server_side = routes[0]
    server_side.close(code=1000)
    client_side.close(code=4000, reason="network dropped")
    expect(call).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#call-status")).to_contain_text("Reconnecting")
    # "connected" again means a new socket received the server's `ready`.
    expect(call).to_have_attribute("data-state", "connected", timeout=20_000)

    page.get_by_role("button", name="Hang up").click()
    expect(call).to_have_attribute("data-state", "ended")
    wait_until_disconnected([str(session.id)])
    session.refresh_from_db()
    assert session.status == CallSession.Status.ENDED


DOWNSAMPLE_440HZ = """async () => {
  // One second of a 440 Hz tone at 44.1 kHz (the rate Chromium's capture ran at)
  // through the capture worklet; returns the 16 kHz PCM16 samples it posted.
  const context = new OfflineAudioContext(1, 44100, 44100);
  await context.audioWorklet.addModule("/static/js/pcm-capture-worklet.js");
  const node = new AudioWorkletNode(context, "pcm-capture", {
    processorOptions: { targetRate: 16000, frameMs: 40 },
  });
  const frames = [];
  node.port.onmessage = (event) => frames.push(Array.from(new Int16Array(event.data)));
  const tone = context.createOscillator();
  tone.frequency.value = 440;
  const gain = context.createGain();
  gain.gain.value = 0.5;
  tone.connect(gain).connect(node);
  node.connect(context.destination);
  tone.start();
  await context.startRendering();
  await new Promise((resolve) => setTimeout(resolve, 300));
  return frames;
}"""


def test_capture_worklet_downsamples_to_16khz_pcm16(page: Page, daphne_server) -> None:
    page.goto("/")
    frames = page.evaluate(DOWNSAMPLE_440HZ)
    assert {len(frame) for frame in frames} == {640}  # 40 ms frames at 16 kHz
    samples = [s for frame in frames for s in frame]
    assert 15_360 <= len(samples) <= 16_000  # one second, less an unfinished last frame
    seconds = len(samples) / 16_000
    crossings = sum(1 for a, b in zip(samples, samples[1:], strict=False) if (a < 0) != (b < 0))
    assert abs(crossings / seconds / 2 - 440) < 5  # still a 440 Hz tone at the new rate
    assert 0.45 * 32767 < max(samples) < 0.52 * 32767  # amplitude kept, no clipping


PLAY_CHUNKS = """async (flush) => {
  // Ten 50 ms chunks of a 440 Hz tone as PCM16 at 22050 Hz, enqueued at once as
  // they arrive from the socket; renders what the speakers would play.
  const { PcmPlayer } = await import("/static/js/player.js");
  const context = new OfflineAudioContext(1, 44100, 44100);
  const player = new PcmPlayer(context);
  player.sampleRate = 22050;
  const chunk = 1102;
  let n = 0;
  for (let c = 0; c < 10; c++) {
    const pcm = new Int16Array(chunk);
    for (let i = 0; i < chunk; i++, n++) {
      pcm[i] = Math.round(16000 * Math.sin((2 * Math.PI * 440 * n) / 22050));
    }
    player.enqueue(pcm.buffer);
  }
  if (flush) player.flush();  // what `interrupted` does
  const rendered = await context.startRendering();
  return Array.from(rendered.getChannelData(0));
}"""


def test_player_schedules_chunks_back_to_back(page: Page, daphne_server) -> None:
    page.goto("/")
    output = page.evaluate(PLAY_CHUNKS, False)
    audible = [i for i, v in enumerate(output) if abs(v) > 0.05]
    start, end = audible[0], audible[-1]
    assert abs(start / 44100 - 0.05) < 0.01  # starts after the jitter lead
    assert abs((end - start) / 44100 - 10 * 1102 / 22050) < 0.01  # 0.5 s of tone
    # No gap between chunks: a 440 Hz tone never stays near zero for 1 ms.
    quiet_run = longest = 0
    for v in output[start:end]:
        quiet_run = quiet_run + 1 if abs(v) < 0.02 else 0
        longest = max(longest, quiet_run)
    assert longest < 44


def test_player_flush_silences_queued_audio(page: Page, daphne_server) -> None:
    page.goto("/")
    assert max(abs(v) for v in page.evaluate(PLAY_CHUNKS, True)) == 0
