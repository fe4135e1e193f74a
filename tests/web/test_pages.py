"""Browser tests of the site pages in real Chromium against a real daphne.

Each page is saved as a screenshot under artifacts/screenshots/ for people to look at.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from agents.models import Agent
from calls.models import CallSession, Turn
from calls.services import end_session, start_session
from tests.conftest import PASSWORD

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)
Shot = Callable[[Page, str], Path]


def test_sign_up_log_out_and_log_in(page: Page, screenshot: Shot) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Voice agents")
    screenshot(page, "home")
    # The first Tab stop is the skip link; following it moves focus past the navigation.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    page.get_by_role("link", name="Sign up free").click()
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    page.get_by_label("Email").fill("new.operator@example.com")
    page.get_by_label("Username").fill("newoperator")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill("a-different-password-99")
    page.get_by_role("button", name="Sign up").click()
    # The mismatch is reported beside the second password field; nothing was created.
    expect(page.locator('[data-error-for="password2"]')).to_be_visible()
    screenshot(page, "signup-error")
    assert not User.objects.filter(username="newoperator").exists()

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/dashboard/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator('[data-stat="agents"]')).to_have_text("0")
    screenshot(page, "dashboard-empty")
    assert User.objects.filter(username="newoperator", email="new.operator@example.com").exists()

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(lambda url: url.endswith("/"))
    expect(page.get_by_role("navigation").get_by_role("link", name="Log in")).to_be_visible()

    page.goto("/accounts/login/")
    page.get_by_label("Login").fill("newoperator")
    page.get_by_label("Password").fill("wrong-password-123")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not correct")
    screenshot(page, "login-error")
    log_in(page, "newoperator")
    expect(page.get_by_role("navigation").get_by_text("newoperator")).to_be_visible()
    # allauth's own pages render inside the site layout.
    page.goto("/accounts/password/change/")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_role("heading", name="Change Password")).to_be_visible()
    screenshot(page, "account-password-change")


def test_dashboard_requires_login(page: Page, screenshot: Shot) -> None:
    page.goto("/dashboard/")
    page.wait_for_url("**/accounts/login/?next=/dashboard/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot(page, "login")


def test_create_edit_and_delete_an_agent(page: Page, screenshot: Shot, make_user) -> None:
    make_user("builder")
    log_in(page, "builder")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Agents").click()
    expect(page.get_by_text("You have no agents yet")).to_be_visible()
    page.get_by_role("link", name="Create your first agent").click()

    page.get_by_label("Name", exact=True).fill("Clinic desk")
    page.get_by_label("Start from a persona").select_option("receptionist")
    expect(page.get_by_label("System prompt")).to_have_value(
        "You are the friendly receptionist of a dental clinic. Help callers book, move or "
        "cancel appointments. Keep answers brief and confirm dates back to the caller."
    )
    expect(page.get_by_label("Greeting")).to_have_value(
        "Good day, you have reached the clinic. How may I help you?"
    )
    # The intents editor starts with the six default rows; add one, remove "command".
    rows = page.locator("#intent-rows tr")
    expect(rows).to_have_count(6)
    page.get_by_role("button", name="Add intent").click()
    rows.last.locator(".intent-name").fill("booking")
    rows.last.locator(".intent-description").fill("The caller wants an appointment.")
    page.get_by_role("button", name="Remove intent 3").click()
    page.get_by_label("Responder temperature").fill("0.5")
    screenshot(page, "agent-create")
    page.get_by_role("button", name="Create agent").click()

    page.wait_for_url("**/agents/")
    expect(page.get_by_role("status")).to_contain_text("Clinic desk")
    expect(page.locator("#agents-table")).to_contain_text("Clinic desk")
    screenshot(page, "agents-list")
    agent = Agent.objects.get(name="Clinic desk")
    assert agent.owner.username == "builder"
    assert agent.intent_names == [
        "greeting",
        "question",
        "farewell",
        "clarification",
        "other",
        "booking",
    ]
    assert agent.responder_temperature == 0.5
    assert agent.greeting.startswith("Good day")

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Classifier temperature").fill("5")
    page.get_by_label("Name", exact=True).fill("   ")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator('[data-error-for="classifier_temperature"]')).to_contain_text(
        "less than or equal to 2"
    )
    expect(page.locator('[data-error-for="name"]')).to_be_visible()
    expect(page.get_by_label("Classifier temperature")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "agent-edit-errors")
    agent.refresh_from_db()
    assert agent.classifier_temperature == 0.3 and agent.name == "Clinic desk"

    page.get_by_label("Name", exact=True).fill("Clinic front desk")
    page.get_by_label("Classifier temperature").fill("0.2")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url("**/agents/")
    agent.refresh_from_db()
    assert (agent.name, agent.classifier_temperature) == ("Clinic front desk", 0.2)
    assert "booking" in agent.intent_names

    Agent.objects.create(owner=agent.owner, name="Old line")
    page.goto("/agents/?q=front")
    expect(page.locator("#agents-table tbody tr")).to_have_count(1)
    page.goto("/agents/?q=old")
    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Delete “Old line”?")
    screenshot(page, "agent-delete")
    page.get_by_role("button", name="Delete agent").click()
    page.wait_for_url("**/agents/")
    assert list(Agent.objects.values_list("name", flat=True)) == ["Clinic front desk"]


def test_intents_fall_back_to_json_without_javascript(
    browser, daphne_server, make_user, screenshot: Shot
) -> None:
    make_user("nojs")
    context = browser.new_context(base_url=daphne_server.url, java_script_enabled=False)
    page = context.new_page()
    log_in(page, "nojs")
    page.goto("/agents/new/")
    page.get_by_label("Name", exact=True).fill("Plain")
    page.get_by_label("Intents").fill('[{"name": "yes"}, {"name": "yes"}]')
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator('[data-error-for="intents"]')).to_contain_text("appears twice")
    page.get_by_label("Intents").fill('[{"name": "yes", "description": "Agrees."}]')
    page.get_by_role("button", name="Create agent").click()
    page.wait_for_url("**/agents/")
    assert Agent.objects.get(name="Plain").intents == [{"name": "yes", "description": "Agrees."}]
    context.close()


def test_examples_are_edited_as_lines_in_the_builder(
    page: Page, screenshot: Shot, make_user
) -> None:
    make_user("teacher")
    log_in(page, "teacher")
    page.goto("/agents/new/")
    page.get_by_label("Name", exact=True).fill("Shop line")
    examples = page.get_by_label("Examples")
    examples.fill("farewell: cheerio then\nbilling: where is my invoice?")
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator('[data-error-for="examples"]')).to_contain_text("'billing'")
    expect(examples).to_have_attribute("aria-invalid", "true")
    screenshot(page, "agent-examples-error")
    assert not Agent.objects.filter(name="Shop line").exists()

    examples.fill("farewell: cheerio then\n\nfarewell:  I'll ring off now \nquestion: any news?")
    page.get_by_role("button", name="Create agent").click()
    page.wait_for_url("**/agents/")
    agent = Agent.objects.get(name="Shop line")
    assert agent.examples == {
        "farewell": ["cheerio then", "I'll ring off now"],
        "question": ["any news?"],
    }
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Examples")).to_have_value(
        "farewell: cheerio then\nfarewell: I'll ring off now\nquestion: any news?"
    )


def recorded_call(user: User) -> CallSession:
    """A finished call as the pipeline records it: caller and agent turns with timings."""
    agent = Agent.objects.create(owner=user, name="Weather line")
    session = start_session(agent, user)
    turns = [
        ("user", "What is the weather like today?", "question", {"stt_ms": 420}),
        (
            "agent",
            "It is sunny and warm.",
            "",
            {"classify_ms": 90, "first_token_ms": 310, "first_audio_ms": 650, "total_ms": 1400},
        ),
        ("user", "Thanks, goodbye.", "farewell", {"stt_ms": 380}),
        (
            "agent",
            "Goodbye!",
            "",
            {"classify_ms": 80, "first_token_ms": 250, "first_audio_ms": 540, "total_ms": 900},
        ),
    ]
    for index, (speaker, text, intent, timings) in enumerate(turns):
        Turn.objects.create(
            session=session,
            index=index,
            turn_id=index // 2 + 1,
            speaker=speaker,
            text=text,
            intent=intent,
            **timings,
        )
    CallSession.objects.filter(pk=session.pk).update(turn_count=len(turns))
    return end_session(session, "hangup")


def test_sessions_list_detail_export_and_end(page: Page, screenshot: Shot, make_user) -> None:
    user = make_user("reviewer")
    finished = recorded_call(user)
    active = start_session(Agent.objects.create(owner=user, name="Open line"), user)
    other = make_user("someone-else")
    start_session(Agent.objects.create(owner=other, name="Not mine"), other)

    log_in(page, "reviewer")
    expect(page.locator('[data-stat="sessions"]')).to_have_text("2")
    expect(page.locator("#latency-table")).to_contain_text("650 ms")
    screenshot(page, "dashboard")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_role("link", name="Start a call")).to_be_in_viewport()
    screenshot(page, "dashboard-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto("/sessions/")
    table = page.locator("#sessions-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).not_to_contain_text("Not mine")
    screenshot(page, "sessions-list")
    page.get_by_label("Status").select_option("ended")
    page.get_by_role("button", name="Filter").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("Weather line")
    page.goto("/sessions/?q=open")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("Open line")

    page.goto(f"/sessions/{finished.id}/")
    transcript = page.locator("#transcript li")
    expect(transcript).to_have_count(4)
    expect(transcript.nth(0)).to_contain_text("What is the weather like today?")
    expect(transcript.nth(0)).to_contain_text("question")
    expect(transcript.nth(3)).to_contain_text("Goodbye!")
    chart = page.locator("#latency-chart")
    expect(chart.locator(".chart-group")).to_have_count(2)
    expect(chart.locator(".chart-group").first).to_contain_text("First audio 650 ms")
    # Bars share one scale: the longest figure (1400 ms) spans the full width.
    assert chart.locator("rect.total_ms").first.get_attribute("width") == "100.00"
    screenshot(page, "session-detail")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export TXT").click()
    text = Path(download.value.path()).read_text()
    assert "Caller: What is the weather like today?" in text and "Agent: Goodbye!" in text
    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert [t["text"] for t in exported["turns"]][1] == "It is sunny and warm."

    page.goto(f"/sessions/{active.id}/")
    page.get_by_role("button", name="End session").click()
    expect(page.locator("#session-status")).to_have_text("Ended")
    active.refresh_from_db()
    assert active.status == CallSession.Status.ENDED


def test_other_users_pages_are_not_found(page: Page, make_user) -> None:
    owner = make_user("owner")
    agent = Agent.objects.create(owner=owner, name="Private")
    session = start_session(agent, owner)
    make_user("intruder")
    log_in(page, "intruder")
    for path in (
        f"/agents/{agent.pk}/edit/",
        f"/agents/{agent.pk}/delete/",
        f"/sessions/{session.id}/",
        f"/sessions/{session.id}/transcript.json",
        f"/call/{session.id}/",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
