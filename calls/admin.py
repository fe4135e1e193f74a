"""Admin for call sessions (with their turns inline, read-only, and a link to
their recording) and turns."""

from uuid import UUID

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from .models import CallSession, Recording, Turn
from .recording import recording_response
from .services import end_session

TIMINGS = ("stt_ms", "classify_ms", "first_token_ms", "first_audio_ms", "total_ms")


class TurnInline(admin.TabularInline):
    """The conversation as recorded by the pipeline; history is never edited."""

    model = Turn
    fields = (
        "index",
        "speaker",
        "text",
        "intent",
        *TIMINGS,
        "interrupted",
        "tool_calls",
        "sources",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("index",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(CallSession)
class CallSessionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "agent",
        "user",
        "channel",
        "caller_number",
        "call_sid",
        "status",
        "started_at",
        "ended_at",
        "turn_count",
    )
    list_filter = ("status", "channel", "end_reason", "started_at", "agent")
    search_fields = (
        "id",
        "agent__name",
        "user__username",
        "user__email",
        "caller_number",
        "call_sid",
        "turns__text",
    )
    list_select_related = ("agent", "user")
    # How the call was connected is a fact of its history, like its timings.
    readonly_fields = (
        "id",
        "channel",
        "caller_number",
        "call_sid",
        "started_at",
        "ended_at",
        "turn_count",
        "metrics",
        "recording_link",
    )
    fields = ("id", "agent", "user", "status", "end_reason", *readonly_fields[1:])
    date_hierarchy = "started_at"
    inlines = (TurnInline,)
    actions = ("end_sessions",)

    def get_search_results(self, request, queryset, search_term):  # type: ignore[no-untyped-def]
        queryset, _ = super().get_search_results(request, queryset, search_term)
        # Searching turn text joins many rows per session; collapse them.
        return queryset.distinct(), False

    def get_urls(self) -> list[URLPattern]:
        recording = self.admin_site.admin_view(self.recording_view)
        return [
            path("<uuid:session_id>/recording.wav", recording, name="calls_callsession_recording"),
            *super().get_urls(),
        ]

    def recording_view(self, request: HttpRequest, session_id: UUID) -> HttpResponseBase:
        """Any session's recording, for staff who may view sessions."""
        session = get_object_or_404(CallSession, pk=session_id)
        if not self.has_view_permission(request, session):
            raise PermissionDenied
        return recording_response(request, session)

    @admin.display(description="recording")
    def recording_link(self, obj: CallSession) -> str:
        """The recording, played by the owner-checked route (an admin may see any)."""
        recording = Recording.objects.filter(session=obj).first()
        if recording is None:
            return "–"
        return format_html(
            '<a href="{}">recording.wav</a> ({} s)',
            reverse("admin:calls_callsession_recording", args=[obj.pk]),
            round(recording.duration_ms / 1000),
        )

    @admin.action(description="End selected sessions")
    def end_sessions(self, request: HttpRequest, queryset: QuerySet[CallSession]) -> None:
        active = queryset.filter(status=CallSession.Status.ACTIVE)
        count = 0
        for session in active:
            end_session(session, reason="ended_by_admin")
            count += 1
        self.message_user(request, f"Ended {count} session(s).", messages.SUCCESS)


@admin.register(Turn)
class TurnAdmin(admin.ModelAdmin):
    list_display = (
        "session",
        "index",
        "speaker",
        "short_text",
        "intent",
        "total_ms",
        "interrupted",
    )
    list_filter = ("speaker", "interrupted", "intent", "created_at")
    search_fields = ("text", "intent", "session__id")
    list_select_related = ("session", "session__agent")
    readonly_fields = ("session", "index", "turn_id", "speaker", "tool_calls", "created_at")
    readonly_fields = ("session", "index", "turn_id", "speaker", "sources", "created_at")

    @admin.display(description="text")
    def short_text(self, obj: Turn) -> str:
        return obj.text[:80]
