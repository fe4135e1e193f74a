"""Map HTTP-level failures of the cloud SDKs to :class:`EngineError` codes.

Each SDK wraps httpx in its own exception types; the provider modules unwrap
them and call :func:`status_error` / :func:`transport_error` so every provider
reports the same codes for the same failure.
"""

import httpx

from workers.engines.base import EngineError

# A voice turn cannot wait for exponential back-off: the SDKs' automatic
# retries are disabled and the pipeline answers with a fallback instead.
MAX_RETRIES = 0


def status_error(stage: str, provider: str, status: int, detail: object) -> EngineError:
    text = str(detail)[:300]
    if status in (401, 403):
        return EngineError(
            stage, provider, "unauthorized", f"{provider} refused the API key ({status}): {text}"
        )
    if status in (408, 504):
        return EngineError(stage, provider, "timeout", f"{provider} timed out ({status}): {text}")
    return EngineError(stage, provider, "failed", f"{provider} answered HTTP {status}: {text}")


def transport_error(stage: str, provider: str, exc: Exception, url: str) -> EngineError | None:
    """The EngineError for a network-level httpx failure, or None if ``exc`` is not one."""
    if isinstance(exc, httpx.TimeoutException):
        return EngineError(stage, provider, "timeout", f"No answer from {url} in time.")
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return EngineError(
            stage, provider, "unreachable", f"Cannot reach {provider} at {url}: {exc}"
        )
    return None


def require_key(stage: str, provider: str, key: str, setting: str) -> None:
    if not key:
        raise EngineError(
            stage,
            provider,
            "missing_key",
            f"Set {setting} to use {provider} (VOICE_{stage.upper()}).",
        )
