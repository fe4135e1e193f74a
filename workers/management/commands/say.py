"""``manage.py say "text" -o out.wav [--voice NAME]``: synthesize with the TTS engine."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.models import DEFAULT_VOICE
from workers.audio import duration_s, write_wav
from workers.engines import EngineError, get_tts


class Command(BaseCommand):
    help = "Speak text with the configured TTS engine (VOICE_TTS) into a WAV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("text")
        parser.add_argument("-o", "--output", required=True, help="WAV file to write")
        parser.add_argument("--voice", default=DEFAULT_VOICE, help=f"default: {DEFAULT_VOICE}")

    def handle(self, *args: Any, text: str, output: str, voice: str, **options: Any) -> None:
        if not text.strip():
            raise CommandError("Nothing to say: the text is empty.")
        tts = get_tts()
        try:
            audio = b"".join(tts.stream(text, voice))
        except EngineError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        try:
            write_wav(output, audio, tts.sample_rate)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror or exc}") from exc
        self.stdout.write(
            f"Wrote {output}: {duration_s(audio, tts.sample_rate):.2f} s at {tts.sample_rate} Hz"
        )
