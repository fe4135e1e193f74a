"""Web pages: home, dashboard, the browser call page and the sessions pages."""

from dataclasses import dataclass
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.auth import SignedInRequest
from agents.models import Agent, KnowledgeEntry
from voiceproj.errors import QuotaExceeded

from .export import transcript_json, transcript_text_download, transcript_turns
from .forms import SessionFilterForm, StartCallForm
from .models import CallSession, Recording, Turn
from .recording import recording_response
from .services import TIMING_FIELDS, end_session, start_session, ws_path
from .stats import dashboard_stats

RECENT = 5
SESSIONS_PER_PAGE = 20
TIMING_LABELS = {
    "stt_ms": "Speech to text",
    "classify_ms": "Intent",
    "first_token_ms": "First token",
    "first_audio_ms": "First audio",
    "total_ms": "Total",
}


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@login_required
def dashboard(request: SignedInRequest) -> HttpResponse:
    user = request.user
    stats = dashboard_stats(user)
    latency = [
        {"label": TIMING_LABELS[field], **stats["latency"][field]} for field in TIMING_FIELDS
    ]
    return render(
        request,
        "calls/dashboard.html",
        {
            "stats": stats,
            "latency": latency,
            "recent_agents": Agent.objects.filter(owner=user)[:RECENT],
            "recent_sessions": CallSession.objects.filter(user=user).select_related("agent")[
                :RECENT
            ],
        },
    )


def owned_session(request: SignedInRequest, session_id: UUID) -> CallSession:
    """The signed-in user's session, or 404 (someone else's session does not exist here)."""
    return get_object_or_404(
        CallSession.objects.select_related("agent"), pk=session_id, user=request.user
    )


@login_required
def call(request: SignedInRequest) -> HttpResponse:
    """Choose an agent (GET) and start a call with it (POST → the live call page).

    A reached quota answers 429 with the form and the reason above it.
    """
    if request.method != "POST":
        form = StartCallForm(initial={"agent": request.GET.get("agent")}, user=request.user)
        return render(request, "calls/start.html", {"form": form})
    form = StartCallForm(request.POST, user=request.user)
    if not form.is_valid():
        return render(request, "calls/start.html", {"form": form})
    try:
        session = start_session(form.cleaned_data["agent"], request.user)
    except QuotaExceeded as exc:
        form.add_error(None, exc.message)
        response = render(request, "calls/start.html", {"form": form}, status=429)
        if exc.retry_after_s is not None:
            response["Retry-After"] = str(exc.retry_after_s)
        return response
    return redirect("calls:live", session_id=session.id)


@login_required
def live(request: SignedInRequest, session_id: UUID) -> HttpResponse:
    session = owned_session(request, session_id)
    if not session.is_active:
        messages.info(request, "That call has ended; here is its record.")
        return redirect("calls:detail", session_id=session.id)
    if session.channel != CallSession.Channel.WEB:
        # Twilio holds the call's one connection; the browser cannot join it.
        messages.info(request, "That is a phone call; here is its record.")
        return redirect("calls:detail", session_id=session.id)
    return render(request, "calls/live.html", {"session": session, "ws_path": ws_path(session)})


@login_required
def session_list(request: SignedInRequest) -> HttpResponse:
    form = SessionFilterForm(request.GET)
    sessions = CallSession.objects.filter(user=request.user).select_related("agent")
    if form.is_valid():
        if form.cleaned_data["status"]:
            sessions = sessions.filter(status=form.cleaned_data["status"])
        if form.cleaned_data["channel"]:
            sessions = sessions.filter(channel=form.cleaned_data["channel"])
        if form.cleaned_data["q"]:
            sessions = sessions.filter(agent__name__icontains=form.cleaned_data["q"])
    page = Paginator(sessions, SESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "calls/session_list.html",
        {"form": form, "page_obj": page, "sessions": page.object_list},
    )


@dataclass
class Bar:
    key: str
    label: str
    ms: int
    width: float  # percent of the chart's scale
    y: int  # SVG row offset


@dataclass
class ChartRow:
    """One pipeline turn of the latency chart."""

    turn_id: int
    text: str
    bars: list[Bar]

    @property
    def height(self) -> int:
        return len(self.bars) * BAR_PITCH


BAR_PITCH = 10  # SVG units per bar: 8 of bar, 2 of gap


def latency_chart(turns: list[Turn]) -> tuple[list[ChartRow], int]:
    """Merge each turn id's timings (STT on the caller's turn, the rest on the agent's)."""
    timings: dict[int, dict[str, int]] = {}
    texts: dict[int, str] = {}
    for turn in turns:
        merged = timings.setdefault(turn.turn_id, {})
        for field in TIMING_FIELDS:
            value = getattr(turn, field)
            if value is not None:
                merged[field] = value
        if turn.speaker == Turn.Speaker.USER:
            texts[turn.turn_id] = turn.text
    scale = max((ms for row in timings.values() for ms in row.values()), default=0)
    rows = []
    for turn_id, row in timings.items():
        fields = [field for field in TIMING_FIELDS if field in row]
        if not fields:
            continue
        bars = [
            Bar(
                field,
                TIMING_LABELS[field],
                row[field],
                100 * row[field] / (scale or 1),
                i * BAR_PITCH,
            )
            for i, field in enumerate(fields)
        ]
        rows.append(ChartRow(turn_id=turn_id, text=texts.get(turn_id, ""), bars=bars))
    return rows, scale


def clock(seconds: float) -> str:
    """``m:ss`` of a moment in a recording."""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


@login_required
def session_detail(request: SignedInRequest, session_id: UUID) -> HttpResponse:
    session = owned_session(request, session_id)
    turns = transcript_turns(session)
    chart, scale = latency_chart(turns)
    recorded = Recording.objects.filter(session=session).first()
    if recorded is not None:
        # Where each turn begins in the recording, for the player's seek links.
        # Template-only attributes: Turn has no such fields, so setattr keeps mypy honest.
        offsets = recorded.offsets()
        for turn in turns:
            offset = offsets.get((turn.turn_id, turn.speaker))
            setattr(turn, "seek_s", offset)  # noqa: B010
            setattr(turn, "seek_label", clock(offset) if offset is not None else "")  # noqa: B010
    cited = {source for turn in turns for source in turn.sources}
    titles = dict(
        KnowledgeEntry.objects.filter(pk__in=cited, agent=session.agent).values_list("id", "title")
    )
    for turn in turns:
        # A deleted entry still shows its id: the turn's record is history.
        turn.source_titles = [(s, titles.get(s, "deleted entry")) for s in turn.sources]  # type: ignore[attr-defined]
    return render(
        request,
        "calls/session_detail.html",
        {
            "session": session,
            "turns": turns,
            "chart": chart,
            "chart_scale": scale,
            "timing_labels": TIMING_LABELS,
            "intents": sorted({turn.intent for turn in turns if turn.intent}),
            "recording": recorded,
            "recording_length": clock(recorded.duration_ms / 1000) if recorded else "",
        },
    )


@login_required
@require_POST
def end(request: SignedInRequest, session_id: UUID) -> HttpResponse:
    session = owned_session(request, session_id)
    if session.is_active:
        end_session(session, "ended from the web page")
        messages.success(request, "The call was ended.")
    return redirect("calls:detail", session_id=session.id)


@login_required
def recording(request: SignedInRequest, session_id: UUID) -> HttpResponseBase:
    """The session's recording for the page's player (the API's, cookie-authenticated)."""
    return recording_response(request, owned_session(request, session_id))


@login_required
def export(request: SignedInRequest, session_id: UUID, fmt: str) -> HttpResponse:
    """Download the transcript as ``json`` or ``txt`` (the API's formats, cookie-authenticated)."""
    if fmt not in ("json", "txt"):
        raise Http404("Export formats are json and txt.")
    session = owned_session(request, session_id)
    rows = transcript_turns(session)
    if fmt == "txt":
        return transcript_text_download(session, rows)
    response = JsonResponse(
        transcript_json(session, rows), json_dumps_params={"indent": 2, "ensure_ascii": False}
    )
    response["Content-Disposition"] = f'attachment; filename="transcript-{session.id}.json"'
    return response
