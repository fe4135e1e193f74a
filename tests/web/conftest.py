"""Browser fixtures: Debian's Chromium driven by Playwright against a real daphne.

The live daphne and Celery worker fixtures are the pipeline suite's
(``tests/pipeline/conftest.py``), imported here so both suites share one set of
processes per test session. Tests must use ``transactional_db``: the daphne
subprocess only sees committed data.

Chromium's fake microphone plays ``fake_mic_wav`` (the Piper-synthesized question
of ``tests/data`` between stretches of silence) in a loop.
"""

from __future__ import annotations

import os
import re
import shutil
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import PASSWORD
from tests.pipeline.conftest import (  # noqa: F401  (fixtures used by the browser tests)
    celery_workers,
    daphne_server,
    live_log_dir,
    live_server_factory,
)

# Playwright's sync API keeps an event loop running in the test thread, which makes
# Django refuse ORM calls from the test body; the tests run one thread, so it is safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Silence before the question lets the page connect first; the long silence after
# it lets the agent answer before Chromium loops the file and the caller speaks
# again. On a busy 2-core box the first answer (models loading) took 45 s.
LEAD_SILENCE_S = 2.0
TRAIL_SILENCE_S = 90.0


@pytest.fixture(scope="session")
def fake_mic_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with wave.open(str(DATA / "question_16k.wav"), "rb") as source:
        params = source.getparams()
        speech = source.readframes(source.getnframes())
    frame_bytes = params.sampwidth * params.nchannels
    lead = b"\0" * int(LEAD_SILENCE_S * params.framerate) * frame_bytes
    trail = b"\0" * int(TRAIL_SILENCE_S * params.framerate) * frame_bytes
    path = tmp_path_factory.mktemp("mic") / "question.wav"
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(lead + speech + trail)
    return path


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright, fake_mic_wav: Path) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required: apt-get install -y chromium")
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_mic_wav}",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, daphne_server) -> Iterator[BrowserContext]:  # noqa: F811
    context = browser.new_context(
        base_url=daphne_server.url, viewport={"width": 1280, "height": 900}
    )
    context.grant_permissions(["microphone"], origin=daphne_server.url)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Chromium reports every resource the Content-Security-Policy blocked on
    # the console: any such report means a page of ours breaks under the CSP.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    assert not errors, f"JavaScript errors or CSP violations on the page: {errors}"


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], Path]:
    """``screenshot(page, "agents-list")`` saves a full-page PNG under artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login page and land on the dashboard."""
    page.goto("/accounts/login/")
    page.get_by_label("Login").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/")
