"""Session lifecycle shared by the REST API, the web pages and the pipeline."""

from statistics import quantiles
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.models import Agent

from .models import CallSession, Turn
from .quotas import count_session_start


def start_session(agent: Agent, user: Any, **fields: Any) -> CallSession:
    """Open a new active call session of ``user`` with ``agent`` (more model
    ``fields`` for a phone call); ``QuotaExceeded`` past the user's quotas."""
    with transaction.atomic():
        count_session_start(user)
        return CallSession.objects.create(agent=agent, user=user, **fields)


def ws_path(session: CallSession) -> str:
    """Path of the session's WebSocket (wire protocol v1)."""
    return f"/ws/voice/{session.id}/"


def end_session(
    session: CallSession, reason: str, status: str = CallSession.Status.ENDED
) -> CallSession:
    """End ``session`` once; ending an already-ended session changes nothing."""
    with transaction.atomic():
        locked = CallSession.objects.select_for_update().get(pk=session.pk)
        if locked.status == CallSession.Status.ACTIVE:
            locked.status = status
            locked.ended_at = timezone.now()
            locked.end_reason = reason[:40]
            locked.metrics = latency_summary(locked)
            locked.save(update_fields=["status", "ended_at", "end_reason", "metrics"])
    return locked


def percentile_summary(values: list[int]) -> dict[str, int | None]:
    """p50/p95/max of a list of millisecond figures (``None`` when empty)."""
    if not values:
        return {"p50": None, "p95": None, "max": None}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "max": values[0]}
    cuts = quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49]), "p95": round(cuts[94]), "max": max(values)}


TIMING_FIELDS = ("stt_ms", "classify_ms", "first_token_ms", "first_audio_ms", "total_ms")


def latency_summary(session: CallSession) -> dict[str, dict[str, int | None]]:
    """Percentiles of each timing over the session's turns that measured it."""
    rows = list(Turn.objects.filter(session=session).values_list(*TIMING_FIELDS))
    return {
        field: percentile_summary([row[i] for row in rows if row[i] is not None])
        for i, field in enumerate(TIMING_FIELDS)
    }
