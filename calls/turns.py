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
                        index=Turn.objects.filter(session=session).count(),
                    )
                    CallSession.objects.filter(pk=session.pk).update(turn_count=F("turn_count") + 1)
                for name, value in fields.items():
                    setattr(turn, name, value)
                turn.save()
                session.metrics = latency_summary(session)
                session.save(update_fields=["metrics"])
                return turn
        except IntegrityError:
            continue
    raise RuntimeError(f"could not save turn {turn_id} of session {session_id}")


ROLE_OF_SPEAKER: dict[str, str] = {Turn.Speaker.USER: "user", Turn.Speaker.AGENT: "assistant"}


def history(session_id: str, limit: int) -> list[dict[str, str]]:
    """The last ``limit`` turns with text, oldest first, as chat messages."""
    rows = (
        Turn.objects.filter(session__pk=session_id)
        .exclude(text="")
        .order_by("-index")
        .values_list("speaker", "text")[:limit]
    )
    return [{"role": ROLE_OF_SPEAKER[speaker], "content": text} for speaker, text in reversed(rows)]


def finish_agent_turn(
    session_id: str, turn_id: int, text: str, first_audio_ms: int | None, total_ms: int
) -> dict[str, int | None]:
    """Save the consumer's timings of a delivered reply; return the turn's metrics.

    The workers saved ``stt_ms`` on the user turn and ``classify_ms`` /
    ``first_token_ms`` on the agent turn; the text is passed again so a reply
    the workers did not save (a greeting) is still recorded.
    """
    agent = record_turn(
        session_id,
        turn_id,
        Turn.Speaker.AGENT,
        text=text,
        first_audio_ms=first_audio_ms,
        total_ms=total_ms,
    )
    stt_ms = (
        Turn.objects.filter(session__pk=session_id, turn_id=turn_id, speaker=Turn.Speaker.USER)
        .values_list("stt_ms", flat=True)
        .first()
    )
    return {
        "stt_ms": stt_ms,
        "classify_ms": agent.classify_ms,
        "first_token_ms": agent.first_token_ms,
        "first_audio_ms": first_audio_ms,
        "total_ms": total_ms,
    }
