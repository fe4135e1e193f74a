"""Settings as a server process loads them: production defaults and the SECRET_KEY check."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOOD_KEY = "k2J9-vQ7xL0pZr4Wm8Ts1Yb6Nc3Hf5Ud0Ge7Ia2Ko9Pj4Rl1Sq8Vw6Xy3Zt5Bn7Cm"
PRINT_DEBUG = (
    "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
)


def run_python(code_or_args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter whose environment lacks DEBUG and SECRET_KEY unless given.

    The browser tests' DJANGO_ALLOW_ASYNC_UNSAFE (tests/web/conftest.py) goes
    too: no deployment sets it, and the deploy check rightly refuses it.
    """
    dropped = {"DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, *code_or_args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "voiceproj.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_debug_is_off_unless_asked_for_and_then_a_secret_key_is_required() -> None:
    unset = run_python(["-c", PRINT_DEBUG])
    assert unset.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in unset.stderr
    production = run_python(["-c", PRINT_DEBUG], SECRET_KEY=GOOD_KEY)
    assert production.returncode == 0, production.stderr
    assert production.stdout.strip() == "False"


def test_published_placeholder_and_weak_keys_are_refused_at_start_up() -> None:
    for key, reason in [
        ("change-me-in-production", "published placeholder"),
        ("django-insecure-" + "x" * 50, "published placeholder"),
        ("short-key-1234", "too weak"),
        ("ab" * 30, "too weak"),
    ]:
        result = run_python(["-c", PRINT_DEBUG], SECRET_KEY=key)
        assert result.returncode != 0, key
        assert reason in result.stderr, (key, result.stderr[-500:])


def test_development_server_runs_without_a_key_when_debug_is_asked_for() -> None:
    result = run_python(["-c", PRINT_DEBUG], DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_production_settings_pass_the_deploy_check_at_warning_level() -> None:
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="voice.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_redirects_to_https_except_the_probes() -> None:
    code = (
        "import django; django.setup(); from django.test import Client; c = Client(); "
        "print([c.get(p).status_code for p in ('/', '/api/health', '/metrics')])"
    )
    result = run_python(["-c", code], SECRET_KEY=GOOD_KEY, ALLOWED_HOSTS="testserver")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[301, 200, 401]"


def test_a_repeat_penalty_out_of_range_is_refused_at_start_up() -> None:
    for wrong in ("0.5", "3"):
        refused = run_python(["-c", PRINT_DEBUG], SECRET_KEY=GOOD_KEY, LLM_REPEAT_PENALTY=wrong)
        assert refused.returncode != 0
        assert "LLM_REPEAT_PENALTY must be 1.0 (none) to 2.0" in refused.stderr
    taken = run_python(["-c", PRINT_DEBUG], SECRET_KEY=GOOD_KEY, LLM_REPEAT_PENALTY="1.0")
    assert taken.returncode == 0, taken.stderr
