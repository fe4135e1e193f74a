"""Operator commands: say, transcribe, chat and engines check."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from agents.models import Agent
from workers.engines.llamacpp_llm import LlamaCppLLM
from workers.engines.piper_tts import PiperTTS
from workers.engines.whisper_stt import WhisperSTT

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_say_then_transcribe(tmp_path: Path, piper: PiperTTS, whisper: WhisperSTT) -> None:
    wav = tmp_path / "out.wav"
    said = run("say", "The meeting starts at nine.", "-o", str(wav), "--voice", "en_US-joe-medium")

    assert "22050 Hz" in said
    heard = run("transcribe", str(wav)).lower()
    assert "meeting" in heard and ("nine" in heard or "9" in heard)


def test_say_unknown_voice_fails_with_the_code(tmp_path: Path, piper: PiperTTS) -> None:
    with pytest.raises(CommandError, match="unknown_voice"):
        run("say", "Hi.", "-o", str(tmp_path / "x.wav"), "--voice", "nobody")
    assert not (tmp_path / "x.wav").exists()


def test_transcribe_rejects_missing_and_non_wav_files(tmp_path: Path, whisper: WhisperSTT) -> None:
    with pytest.raises(CommandError, match="Cannot read"):
        run("transcribe", str(tmp_path / "missing.wav"))
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    with pytest.raises(CommandError, match="bad_audio"):
        run("transcribe", str(junk))


@pytest.mark.django_db
def test_chat_prints_intent_and_reply(agent: Agent, llama: LlamaCppLLM) -> None:
    out = run("chat", "--agent", str(agent.pk), "Goodbye, thanks for your help!")

    intent_line, reply_line = out.strip().splitlines()[:2]
    assert intent_line.removeprefix("intent: ") in agent.intent_names
    assert len(reply_line.removeprefix("reply: ").split()) >= 2


@pytest.mark.django_db
def test_chat_unknown_agent() -> None:
    with pytest.raises(CommandError, match="No agent"):
        run("chat", "--agent", "999999", "hello")
    with pytest.raises(CommandError, match="No agent"):
        run("chat", "--agent", "abc", "hello")


def engines_check(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "engines", "check"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_engines_check_passes_with_local_engines() -> None:
    result = engines_check(VOICE_STT="local", VOICE_LLM="local", VOICE_TTS="local")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for stage in ("tts", "stt", "llm"):
        assert any(line.startswith(stage) and " ok " in line for line in lines), result.stdout


def test_engines_check_fails_when_a_server_is_unreachable(closed_port_url: str) -> None:
    result = engines_check(
        VOICE_STT="local", VOICE_TTS="local", VOICE_LLM="ollama", OLLAMA_HOST=closed_port_url
    )

    assert result.returncode == 1
    assert "llm  ollama    FAILED unreachable" in result.stdout
    assert "1 engine(s) failed" in result.stderr
