"""Dashboard figures of one user, shared by ``GET /api/stats`` and the web dashboard."""

from typing import Any

from django.db.models import Count, Q

from agents.models import Agent

from .models import CallSession, Turn
from .services import TIMING_FIELDS, percentile_summary

# Percentiles over the most recent turns only: the figure an operator watches is
# today's latency, and reading every turn ever recorded grows without bound.
LATENCY_WINDOW_TURNS = 1000


def dashboard_stats(user: Any) -> dict[str, Any]:
    """Counts of the user's agents, sessions by status and turns, plus latency percentiles.

    ``latency`` maps each timing field (``stt_ms`` .. ``total_ms``) to
    ``{"p50", "p95", "max"}`` in milliseconds over the last
    ``LATENCY_WINDOW_TURNS`` turns that measured it (``None`` when none did).
    """
    agents = Agent.objects.filter(owner=user).aggregate(
        total=Count("id"), active=Count("id", filter=Q(is_active=True))
    )
    by_status = dict(
        CallSession.objects.filter(user=user)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    sessions = {status: by_status.get(status, 0) for status in CallSession.Status.values}
    turns_qs = Turn.objects.filter(session__user=user)
    turns = turns_qs.aggregate(
        total=Count("id"),
        user=Count("id", filter=Q(speaker=Turn.Speaker.USER)),
        agent=Count("id", filter=Q(speaker=Turn.Speaker.AGENT)),
        interrupted=Count("id", filter=Q(interrupted=True)),
    )
    latency = {}
    for field in TIMING_FIELDS:
        values = list(
            turns_qs.filter(**{f"{field}__isnull": False})
            .order_by("-created_at")
            .values_list(field, flat=True)[:LATENCY_WINDOW_TURNS]
        )
        latency[field] = percentile_summary(values)
    return {
        "agents": agents,
        "sessions": {"total": sum(sessions.values()), **sessions},
        "turns": turns,
        "latency": latency,
    }
