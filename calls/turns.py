"""Saving turns. Each field has one writer: the workers save the user turn
(text, ``stt_ms``) and what they decide of the agent turn (intent,
``classify_ms``, ``first_token_ms``); the call (calls/core.py) saves what the
caller got of the agent turn (text, ``interrupted``, ``first_audio_ms``,
``total_ms``). Timings flow one way: workers → call, in ``metrics`` events."""

from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import F

from .models import CallSession, Turn
from .services import latency_summary


def record_turn(
    session_id: str,
    turn_id: int,
    speaker: str,
    *,
    while_locked: Callable[[], None] | None = None,
    **fields: object,
) -> Turn:
    """Create or update the ``speaker``'s turn of pipeline turn ``turn_id``.

    Idempotent per (session, turn_id, speaker) so a retried task or a late
    consumer update never duplicates a turn. ``fields`` are Turn fields
    (text, intent, *_ms, interrupted).

    ``while_locked`` runs once, with the session locked and before the turn is
    written: what it starts (the reply to a user turn) need not wait for the
    write, and cannot save a later turn of the session before this one is
    committed, since every save takes the same lock first. If it fails, the
    turn is saved all the same, then its exception is raised.
    """
    pending = while_locked
    failure: Exception | None = None
    for _ in range(3):
        try:
            with transaction.atomic():
                session = CallSession.objects.select_for_update().get(pk=session_id)
                if pending is not None:
                    start, pending = pending, None
                    try:
                        start()
                    except Exception as exc:
                        failure = exc
                turn = _write_turn(session, turn_id, speaker, fields)
            if failure is not None:
                raise failure
            return turn
        except IntegrityError:
            continue
    raise RuntimeError(f"could not save turn {turn_id} of session {session_id}")


def _write_turn(
    session: CallSession, turn_id: int, speaker: str, fields: dict[str, object]
) -> Turn:
    """Insert or update the turn and the session's counters; the session is locked."""
    turn = Turn.objects.filter(session=session, turn_id=turn_id, speaker=speaker).first()
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


ROLE_OF_SPEAKER: dict[str, str] = {Turn.Speaker.USER: "user", Turn.Speaker.AGENT: "assistant"}


def history(session_id: str, before_turn: int, limit: int) -> list[dict[str, str]]:
    """The last ``limit`` turns with text before pipeline turn ``before_turn``,
    oldest first, as chat messages."""
    rows = (
        Turn.objects.filter(session__pk=session_id, turn_id__lt=before_turn)
        .exclude(text="")
        .order_by("-index")
        .values_list("speaker", "text")[:limit]
    )
    return [{"role": ROLE_OF_SPEAKER[speaker], "content": text} for speaker, text in reversed(rows)]


def deliver_agent_turn(
    session_id: str,
    turn_id: int,
    text: str,
    *,
    interrupted: bool = False,
    first_audio_ms: int | None = None,
    total_ms: int | None = None,
) -> None:
    """Save what the caller got of the agent's reply to ``turn_id``.

    The call is the one writer of these fields: the text as delivered (or as
    heard, when the caller barged in), ``interrupted`` and the timings only it
    measures. The workers write the rest of the agent turn (intent,
    ``classify_ms``, ``first_token_ms``) and the user turn.
    """
    if interrupted:  # an interrupted reply keeps no timings
        record_turn(session_id, turn_id, Turn.Speaker.AGENT, text=text, interrupted=True)
        return
    record_turn(
        session_id,
        turn_id,
        Turn.Speaker.AGENT,
        text=text,
        interrupted=False,
        first_audio_ms=first_audio_ms,
        total_ms=total_ms,
    )
