"""Cloud text-to-speech: Cartesia's ``POST /tts/bytes`` through the ``cartesia`` SDK.

Consumes text and a voice, produces raw ``pcm_s16le`` chunks at
:attr:`CartesiaTTS.sample_rate`, passed on as the HTTP body arrives (no
re-buffering, so playback starts with Cartesia's first bytes).
"""

import re
from collections.abc import Iterator
from typing import Final

import cartesia
import httpx
from cartesia.types import RawOutputFormatParam
from cartesia.types.voice_specifier_param import TTSRequestVoiceObject

from workers.engines.base import EngineError
from workers.engines.http import MAX_RETRIES, require_key, status_error, transport_error

# Same rate as the local Piper voices, so switching provider changes nothing
# downstream.
SAMPLE_RATE: Final = 22050
MODEL = "sonic-3"
VOICE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class CartesiaTTS:
    provider = "cartesia"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        api_key: str,
        base_url: str,
        timeout_s: float,
        default_voice: str = "",
        model: str = MODEL,
    ) -> None:
        require_key("tts", self.provider, api_key, "CARTESIA_API_KEY")
        self._client = cartesia.Cartesia(
            api_key=api_key, base_url=base_url or None, timeout=timeout_s, max_retries=MAX_RETRIES
        )
        self._default_voice = default_voice
        self._model = model

    def voice_id(self, voice: str) -> str:
        """The agent's voice if it is a Cartesia voice id, else ``CARTESIA_VOICE_ID``.

        Agents default to a Piper voice name, which Cartesia cannot know.
        """
        for candidate in (voice, self._default_voice):
            if candidate and VOICE_ID.match(candidate):
                return candidate
        raise EngineError(
            "tts",
            self.provider,
            "unknown_voice",
            f"{voice!r} is not a Cartesia voice id; set the agent's voice to one, "
            "or CARTESIA_VOICE_ID for agents with a local voice name.",
        )

    def stream(self, text: str, voice: str) -> Iterator[bytes]:
        voice_id = self.voice_id(voice)
        if not text.strip():
            return
        try:
            with self._client.tts.with_streaming_response.generate(
                model_id=self._model,
                transcript=text,
                voice=TTSRequestVoiceObject(id=voice_id),
                output_format=RawOutputFormatParam(
                    container="raw", encoding="pcm_s16le", sample_rate=SAMPLE_RATE
                ),
            ) as response:
                content_type = response.headers.get("content-type", "")
                if "json" in content_type or "text" in content_type:
                    raise EngineError(
                        "tts",
                        self.provider,
                        "bad_response",
                        f"Cartesia sent {content_type} instead of audio: {response.read()[:200]!r}",
                    )
                yield from _even_chunks(response.iter_bytes())
        except cartesia.APITimeoutError as exc:
            raise EngineError(
                "tts", self.provider, "timeout", "Cartesia did not answer in time."
            ) from exc
        except cartesia.APIConnectionError as exc:
            raise EngineError(
                "tts", self.provider, "unreachable", f"Cannot reach Cartesia: {exc}"
            ) from exc
        except cartesia.NotFoundError as exc:
            raise EngineError(
                "tts", self.provider, "unknown_voice", f"Cartesia has no voice {voice_id!r}."
            ) from exc
        except cartesia.APIStatusError as exc:
            raise status_error("tts", self.provider, exc.status_code, exc.message) from exc
        except httpx.HTTPError as exc:  # while reading the body, outside the SDK's wrapping
            raise transport_error(
                "tts", self.provider, exc, str(self._client.base_url)
            ) or EngineError("tts", self.provider, "failed", str(exc)) from exc


def _even_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Re-cut a byte stream so no chunk splits a 16-bit sample."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        cut = len(data) - len(data) % 2
        carry = data[cut:]
        if cut:
            yield data[:cut]
    if carry:
        raise EngineError("tts", "cartesia", "bad_response", "Cartesia audio ended mid-sample.")
