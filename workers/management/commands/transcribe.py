"""``manage.py transcribe FILE.wav``: print what the configured STT engine hears."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.audio import read_wav
from workers.engines import EngineError, get_stt


class Command(BaseCommand):
    help = "Transcribe a 16-bit PCM WAV file with the configured STT engine (VOICE_STT)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="16-bit PCM WAV file, any rate, mono or stereo")
        parser.add_argument("--language", default="en", help="language code (default: en)")

    def handle(self, *args: Any, file: str, language: str, **options: Any) -> None:
        try:
            pcm16, rate = read_wav(file)
            transcript = get_stt().transcribe(pcm16, rate, language)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}") from exc
        except EngineError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(transcript.text)
        if transcript.confidence is not None and options["verbosity"] > 1:
            self.stderr.write(f"confidence {transcript.confidence:.2f}")
