"""Saving turns: called by workers (user and agent text as it is produced) and
by the consumer (what was actually spoken, timings only it can measure)."""

from django.db import IntegrityError, transaction
from django.db.models import F

from .models import CallSession, Turn
from .services import latency_summary


def record_turn(session_id: str, turn_id: int, speaker: str, **fields: object) -> Turn:
    """Create or update the ``speaker``'s turn of pipeline turn ``turn_id``.

    Idempotent per (session, turn_id, speaker) so a retried task or a late
    consumer update never duplicates a turn. ``fields`` are Turn fields
    (text, intent, *_ms, interrupted).
    """
    for _ in range(3):
        try:
            with transaction.atomic():
                session = CallSession.objects.select_for_update().get(pk=session_id)
                turn = Turn.objects.filter(
                    session=session, turn_id=turn_id, speaker=speaker
                ).first()
                if turn is None:
                    turn = Turn(
                        session=session,
                        turn_id=turn_id,
                        speaker=speaker,
                        index=session.turns.count(),
                    )
                    CallSession.objects.filter(pk=session.pk).update(
                        turn_count=F("turn_count") + 1
                    )
                for name, value in fields.items():
                    setattr(turn, name, value)
                turn.save()
                session.metrics = latency_summary(session)
                session.save(update_fields=["metrics"])
                return turn
        except IntegrityError:
            continue
    raise RuntimeError(f"could not save turn {turn_id} of session {session_id}")
