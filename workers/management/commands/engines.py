"""``manage.py engines check``: load every configured engine and run a tiny sample.

Prints one line per stage with load and sample timings; exits non-zero if any
stage fails, so it works as a deploy or container health check.
"""

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.models import (
    DEFAULT_CLASSIFIER_MODEL,
    DEFAULT_INTENTS,
    DEFAULT_RESPONDER_MODEL,
    DEFAULT_VOICE,
)
from workers.engines import EngineError, get_classifier, get_llm, get_stt, get_tts

SAMPLE_TEXT = "Testing one two three."


class Command(BaseCommand):
    help = "Check the configured engines (VOICE_STT, VOICE_LLM, VOICE_TTS)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        check = actions.add_parser("check", help="load each engine and run a tiny sample")
        check.add_argument("--voice", default=DEFAULT_VOICE)
        check.add_argument("--classifier-model", default=DEFAULT_CLASSIFIER_MODEL)
        check.add_argument("--responder-model", default=DEFAULT_RESPONDER_MODEL)

    def handle(self, *args: Any, **options: Any) -> None:
        self.failures = 0
        speech: dict[str, Any] = {}

        def tts_sample() -> str:
            tts = get_tts()
            speech["pcm"] = b"".join(tts.stream(SAMPLE_TEXT, options["voice"]))
            speech["rate"] = tts.sample_rate
            return f"{len(speech['pcm']) / 2 / tts.sample_rate:.2f} s of audio"

        def stt_sample() -> str:
            if "pcm" not in speech:
                raise EngineError("stt", settings.VOICE_STT, "failed", "no TTS audio to transcribe")
            return repr(get_stt().transcribe(speech["pcm"], speech["rate"]).text)

        def llm_sample() -> str:
            llm = get_llm()
            classifier = get_classifier()  # the LLM, or the local embedding classifier
            model = options["classifier_model"]
            intent = classifier.classify("goodbye!", DEFAULT_INTENTS, model, 0.3)
            reply = "".join(
                llm.stream(
                    [{"role": "user", "content": "Say hello."}], options["responder_model"], 0.7, 16
                )
            )
            return f"intent {intent!r}, reply {reply.strip()[:40]!r}"

        self._check("tts", settings.VOICE_TTS, get_tts, tts_sample)
        self._check("stt", settings.VOICE_STT, get_stt, stt_sample)
        self._check("llm", settings.VOICE_LLM, lambda: (get_llm(), get_classifier()), llm_sample)
        if self.failures:
            raise CommandError(f"{self.failures} engine(s) failed.")

    def _check(
        self, stage: str, provider: str, load: Callable[[], object], sample: Callable[[], str]
    ) -> None:
        started = time.perf_counter()
        try:
            load()
            loaded = time.perf_counter()
            result = sample()
        except EngineError as exc:
            self.failures += 1
            self.stdout.write(
                self.style.ERROR(f"{stage:4} {provider:9} FAILED {exc.code}: {exc.message}")
            )
            return
        done = time.perf_counter()
        self.stdout.write(
            self.style.SUCCESS(
                f"{stage:4} {provider:9} ok  load {loaded - started:5.2f} s  "
                f"sample {done - loaded:5.2f} s  {result}"
            )
        )
