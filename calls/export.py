"""Transcript export formats shared by ``GET /api/sessions/{id}/transcript`` and the web page."""

from typing import Any

from django.http import HttpResponse

from .models import CallSession, Turn
from .schemas import TranscriptOut

SPEAKER_LABEL: dict[str, str] = {Turn.Speaker.USER: "Caller", Turn.Speaker.AGENT: "Agent"}


def transcript_turns(session: CallSession) -> list[Turn]:
    return list(Turn.objects.filter(session=session).order_by("index"))


def transcript_text(session: CallSession, rows: list[Turn]) -> str:
    """A plain-text transcript: a header, then one ``[time] Speaker: text`` line per turn."""
    lines = [
        f"Call with {session.agent.name} · {session.started_at:%Y-%m-%d %H:%M:%S} UTC",
        f"Session {session.id} · {session.status}",
        "",
    ]
    for turn in rows:
        mark = " [interrupted]" if turn.interrupted else ""
        lines.append(
            f"[{turn.created_at:%H:%M:%S}] {SPEAKER_LABEL[turn.speaker]}: {turn.text}{mark}"
        )
    return "\n".join(lines) + "\n"


def transcript_json(session: CallSession, rows: list[Turn]) -> dict[str, Any]:
    """The JSON export: the same document the API's ``format=json`` returns."""
    return TranscriptOut.model_validate({"session": session, "turns": rows}).model_dump(mode="json")


def transcript_text_download(session: CallSession, rows: list[Turn]) -> HttpResponse:
    """The plain-text transcript as an attachment named after the session."""
    response = HttpResponse(
        transcript_text(session, rows), content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="transcript-{session.id}.txt"'
    return response
