"""Cloud speech-to-text: Deepgram's pre-recorded API (``POST /v1/listen``).

Consumes one utterance of PCM16 mono audio, uploads it as a WAV file through
``deepgram-sdk`` and produces the first alternative's :class:`Transcript`.
"""

from collections.abc import Sequence

import httpx
from deepgram import DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment

from workers.audio import validate_pcm16, wav_bytes
from workers.engines.base import EngineError, Transcript
from workers.engines.http import MAX_RETRIES, require_key, status_error, transport_error

DEFAULT_BASE_URL = "https://api.deepgram.com"
# Deepgram's current general-purpose model; smart_format adds punctuation.
MODEL = "nova-3"
MAX_DURATION_S = 120.0
# Deepgram accepts up to 100 key terms per request.
MAX_KEYTERMS = 100


class DeepgramSTT:
    provider = "deepgram"

    def __init__(self, api_key: str, base_url: str, timeout_s: float, model: str = MODEL) -> None:
        require_key("stt", self.provider, api_key, "DEEPGRAM_API_KEY")
        self._base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        ws_url = self._base_url.replace("http", "ws", 1)
        environment = DeepgramClientEnvironment(
            base=self._base_url, production=ws_url, agent=ws_url, agent_rest=self._base_url
        )
        self._client = DeepgramClient(
            api_key=api_key, environment=environment, timeout=timeout_s, max_retries=MAX_RETRIES
        )
        self._model = model

    def transcribe(
        self,
        pcm16: bytes,
        sample_rate: int,
        language: str = "en",
        *,
        tag: str | None = None,
        hints: Sequence[str] = (),
    ) -> Transcript:
        """Deepgram's first alternative; ``tag`` becomes Deepgram's usage-report label.

        ``hints`` are sent as ``keyterm`` parameters (keyterm prompting, Nova-3).
        """
        validate_pcm16(pcm16, sample_rate, MAX_DURATION_S)
        if not pcm16:
            return Transcript(text="", confidence=None)
        try:
            response = self._client.listen.v1.media.transcribe_file(
                request=wav_bytes(bytes(pcm16), sample_rate),
                model=self._model,
                language=language or "en",
                smart_format=True,
                tag=tag,
                keyterm=list(hints)[:MAX_KEYTERMS] or None,
            )
        except ApiError as exc:
            if exc.status_code is not None and 200 <= exc.status_code < 300:
                raise self._bad_response(f"not JSON: {exc.body!r:.200}") from exc
            raise status_error("stt", self.provider, exc.status_code or 0, exc.body) from exc
        except httpx.HTTPError as exc:
            raise transport_error("stt", self.provider, exc, self._base_url) or EngineError(
                "stt", self.provider, "failed", str(exc)
            ) from exc
        return self._transcript(response)

    def _transcript(self, response: object) -> Transcript:
        # The SDK builds the response object without validating it, so a
        # malformed body shows up here as missing attributes.
        try:
            alternative = response.results.channels[0].alternatives[0]  # type: ignore[attr-defined]
            text = alternative.transcript
        except (AttributeError, IndexError, TypeError) as exc:
            raise self._bad_response("no results.channels[0].alternatives[0]") from exc
        if not isinstance(text, str):
            raise self._bad_response("transcript is not a string")
        confidence = getattr(alternative, "confidence", None)
        return Transcript(
            text=text.strip(),
            confidence=float(confidence) if isinstance(confidence, int | float) else None,
        )

    def _bad_response(self, detail: str) -> EngineError:
        return EngineError(
            "stt", self.provider, "bad_response", f"Unexpected Deepgram answer: {detail}"
        )
