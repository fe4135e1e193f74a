"""Wire protocol v1 of ``/ws/voice/<session_id>/``: messages, limits, error codes.

Pure functions and small classes with no I/O, so the consumer stays a thin
state machine and every validation rule is testable on its own. The client
author's view of the same rules is ``docs/protocol.md``.
"""

import json
import time
from typing import Any

AUDIO_ENCODING = "pcm_s16le"
BYTES_PER_SAMPLE = 2
# The rates browsers and phone bridges actually capture at; anything else is a
# client bug we would rather report than silently resample.
ALLOWED_INPUT_RATES = (8000, 16000, 24000, 44100, 48000)
MIN_FRAME_MS = 10
MAX_FRAME_MS = 1000
# Control messages are tiny; a text turn is bounded by VOICE_MAX_TEXT_CHARS.
MAX_MESSAGE_BYTES = 64 * 1024
CLIENT_TYPES = frozenset({"start", "text", "interrupt", "end", "ping"})
# An error quotes at most this much of the offending value: enough to spot a
# typo, and an error event stays small however large the value (escaped as
# JSON, a 64 KiB message could otherwise outgrow the transport limit).
QUOTE_CHARS = 40


class Close:
    """WebSocket close codes of the protocol (plain ints: autobahn rejects int subclasses)."""

    NORMAL = 1000
    SERVER_ERROR = 1011
    NOT_AUTHENTICATED = 4401
    FORBIDDEN = 4403
    NOT_FOUND = 4404
    CONFLICT = 4409
    QUOTA_EXCEEDED = 4429


# Every ``error`` code the server sends, with what it means; docs/protocol.md
# lists the same table, tests/pipeline/test_protocol.py keeps them in sync.
ERROR_CODES: dict[str, str] = {
    "bad_json": "A text message is not a JSON object.",
    "bad_message": (
        "A field of the message is missing or has the wrong type, or `text.text` holds "
        "characters that cannot be stored (NUL, unpaired surrogates)."
    ),
    "unknown_type": "The message `type` is not one the server knows.",
    "message_too_large": "A text message is larger than 64 KiB.",
    "bad_frame": "A binary frame is not whole PCM16 samples or is shorter than 10 ms.",
    "frame_too_large": "A binary frame holds more than 1000 ms of audio.",
    "bad_sample_rate": "`start.sample_rate` is not one of the allowed rates.",
    "already_started": "`start` came after audio; the rate cannot change mid-stream.",
    "rate_limited": "Audio or messages arrive faster than real time allows; input was dropped.",
    "text_too_long": "`text.text` is longer than the configured maximum.",
    "empty_text": "`text.text` is empty.",
    "pipeline_error": "A worker failed on this turn; the agent answers with a fallback line.",
    "turn_failed": (
        "The turn's work was lost (a worker crashed, hung or timed out, or its job was lost); "
        "the agent says the fallback line and the call goes on."
    ),
    "service_unavailable": (
        "Redis or the database is unreachable; the turn could not be started or saved. "
        "The call goes on and recovers when the service is back."
    ),
    "quota_exceeded": (
        "A per-user quota was reached: a turn over VOICE_TURNS_PER_MINUTE was not answered "
        "and the call goes on; or, before close 4429, too many of the user's calls are live."
    ),
    "internal_error": "The server failed on that input; the call goes on.",
}


class ProtocolError(Exception):
    """Bad client input: answered with an ``error`` event, the connection stays."""

    def __init__(self, code: str, message: str) -> None:
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message


def event(type_: str, **fields: Any) -> str:
    """A server → client JSON event."""
    return json.dumps({"type": type_, **fields})


def tool_call_event(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """``tool.call``: the agent is calling tool ``name`` (a worker adds ``turn_id``)."""
    return {"type": "tool.call", "name": name, "arguments": arguments}


def tool_result_event(name: str, ok: bool) -> dict[str, Any]:
    """``tool.result``: whether the call of ``name`` succeeded."""
    return {"type": "tool.result", "name": name, "ok": ok}


def handoff_event(to: str) -> dict[str, Any]:
    """``handoff``: the caller should be transferred to ``to`` (a web client dials
    or shows it; docs/protocol.md)."""
    return {"type": "handoff", "to": to}


def error_event(code: str, message: str) -> str:
    return event("error", code=code, message=message)


def quoted(value: Any) -> str:
    """``value`` as an error message shows it: its repr, cut to QUOTE_CHARS."""
    if isinstance(value, list | dict):
        # repr of a deeply nested value could itself hit the recursion limit.
        return "a JSON array" if isinstance(value, list) else "a JSON object"
    shown = repr(value)
    return shown if len(shown) <= QUOTE_CHARS else shown[: QUOTE_CHARS - 1] + "…"


def parse_message(text: str) -> dict[str, Any]:
    """Decode a client JSON message and check its ``type`` and fields."""
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message_too_large", "Text messages are at most 64 KiB.")
    try:
        message = json.loads(text)
    except RecursionError:
        # Nesting deeper than Python's recursion limit: legal JSON no client means.
        raise ProtocolError("bad_json", "The message nests too deeply.") from None
    except ValueError:
        raise ProtocolError("bad_json", "The message is not valid JSON.") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_json", "The message must be a JSON object.")
    type_ = message.get("type")
    if not isinstance(type_, str):
        raise ProtocolError("bad_message", "The message needs a string `type`.")
    if type_ not in CLIENT_TYPES:
        allowed = ", ".join(sorted(CLIENT_TYPES))
        raise ProtocolError(
            "unknown_type", f"Unknown type {quoted(type_)}; expected one of {allowed}."
        )
    if type_ == "start":
        rate = message.get("sample_rate")
        if isinstance(rate, bool) or not isinstance(rate, int) or rate not in ALLOWED_INPUT_RATES:
            allowed = ", ".join(map(str, ALLOWED_INPUT_RATES))
            raise ProtocolError(
                "bad_sample_rate", f"sample_rate must be one of {allowed}; got {quoted(rate)}."
            )
    if type_ == "text" and not isinstance(message.get("text"), str):
        raise ProtocolError("bad_message", "A text message needs a string `text`.")
    return message


def check_text(text: str, max_chars: int) -> str:
    """The stripped text of a typed turn, or a ProtocolError; text the database
    cannot store (NUL, unpaired surrogates) is refused here, not by a worker."""
    text = text.strip()
    if not text:
        raise ProtocolError("empty_text", "The text is empty.")
    if "\x00" in text:
        raise ProtocolError("bad_message", "The text cannot contain NUL (\\u0000) characters.")
    try:
        text.encode()
    except UnicodeEncodeError:
        # JSON escapes such as \ud800 decode to half a character, not to text.
        raise ProtocolError("bad_message", "The text contains an unpaired surrogate.") from None
    if len(text) > max_chars:
        raise ProtocolError("text_too_long", f"Text turns are at most {max_chars} characters.")
    return text


def check_frame(frame: bytes, sample_rate: int) -> None:
    """Raise unless ``frame`` is 10–1000 ms of whole PCM16 samples at ``sample_rate``."""
    if len(frame) % BYTES_PER_SAMPLE:
        raise ProtocolError("bad_frame", "Audio frames must hold whole 16-bit samples.")
    ms = frame_ms(len(frame), sample_rate)
    if ms < MIN_FRAME_MS:
        raise ProtocolError("bad_frame", f"Audio frames must hold at least {MIN_FRAME_MS} ms.")
    if ms > MAX_FRAME_MS:
        raise ProtocolError("frame_too_large", f"Audio frames hold at most {MAX_FRAME_MS} ms.")


def frame_ms(n_bytes: int, sample_rate: int) -> float:
    return n_bytes / BYTES_PER_SAMPLE * 1000 / sample_rate


class TokenBucket:
    """``rate`` units per second with ``burst`` capacity; ``take`` says if allowed."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self, amount: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < amount:
            return False
        self.tokens -= amount
        return True
