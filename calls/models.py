"""Call sessions, their turns and recordings: the persisted record of every conversation."""

import re
import uuid
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from voiceproj.phone import PhoneNumberField

# Twilio's call SIDs: "CA" and 32 lower-case hex digits.
CALL_SID_PATTERN = r"^CA[0-9a-f]{32}\Z"
CALL_SID = re.compile(CALL_SID_PATTERN)
CALL_SID_LENGTH = 34
validate_call_sid = RegexValidator(
    CALL_SID_PATTERN, "A Twilio call SID is CA and 32 hex digits.", code="invalid_call_sid"
)


class CallSession(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        ERROR = "error", "Error"

    class Channel(models.TextChoices):
        WEB = "web", "Web"
        TWILIO = "twilio", "Phone (Twilio)"
        # A scenario run (calls/scenarios/runner.py): typed lines, no caller on the line.
        SCENARIO = "scenario", "Scenario run"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="sessions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="call_sessions"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=40, blank=True)
    turn_count = models.PositiveIntegerField(default=0)
    # Latency summary over the agent turns (p50/p95 of first_audio_ms and
    # total_ms, ...), refreshed when a turn is saved and when the session ends.
    metrics = models.JSONField(default=dict, blank=True)
    # How the caller is connected: the browser/SDK socket (wire protocol v1) or
    # a phone call through Twilio Media Streams. Phone calls also keep the
    # other party's number and Twilio's id of the call.
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)
    caller_number = PhoneNumberField(blank=True)
    call_sid = models.CharField(
        max_length=CALL_SID_LENGTH, blank=True, validators=[validate_call_sid]
    )

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["user", "-started_at"]),
            models.Index(fields=["user", "status"]),
        ]
        constraints = [
            # One session per phone call: a webhook Twilio retries finds the
            # session it already made. Web sessions have no SID.
            models.UniqueConstraint(
                fields=["call_sid"],
                condition=~models.Q(call_sid=""),
                name="unique_call_sid",
                violation_error_message="Another session already holds this Twilio call SID.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent} · {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Turn(models.Model):
    class Speaker(models.TextChoices):
        USER = "user", "User"
        AGENT = "agent", "Agent"

    session = models.ForeignKey(CallSession, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    # The pipeline's turn id: a user utterance and the agent's answer share it.
    turn_id = models.PositiveIntegerField(default=0)
    speaker = models.CharField(max_length=5, choices=Speaker.choices)
    text = models.TextField(blank=True)
    intent = models.CharField(max_length=40, blank=True)
    stt_ms = models.PositiveIntegerField(null=True, blank=True)
    classify_ms = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    first_audio_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    interrupted = models.BooleanField(default=False)
    # The agent turn's tool calls, in order (workers/tools/runner.py): name,
    # arguments, status (a stable code), ms and an excerpt of the result.
    tool_calls = models.JSONField(default=list, blank=True)
    # The knowledge entries (agents.KnowledgeEntry ids) the agent's reply drew
    # on; ids, not a relation, so deleting an entry never rewrites history.
    sources = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "index"]
        constraints = [
            models.UniqueConstraint(fields=["session", "index"], name="unique_turn_index"),
            models.UniqueConstraint(
                fields=["session", "turn_id", "speaker"], name="unique_pipeline_turn_speaker"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.speaker} #{self.index}: {self.text[:40]}"


def recordings_storage() -> Storage:
    """Where finished recordings are kept (STORAGES["recordings"], docs/recordings.md)."""
    return storages["recordings"]


class Recording(models.Model):
    """A call's audio: one stereo PCM16 WAV, the caller left and the agent right,
    as long as the call, in the "recordings" storage (calls/recording.py)."""

    session = models.OneToOneField(
        CallSession, on_delete=models.CASCADE, primary_key=True, related_name="recording"
    )
    file = models.FileField(storage=recordings_storage, max_length=200)
    sample_rate = models.PositiveIntegerField()
    duration_ms = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    # Where each turn begins in the recording: [{"turn_id", "speaker", "ms"}],
    # so the session page can seek to a turn of the transcript.
    marks = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"recording of {self.session_id}"

    def offsets(self) -> dict[tuple[int, str], float]:
        """Seconds into the recording of each (turn id, speaker) that has a mark."""
        # Reversed, so a turn marked twice keeps its first mark.
        return {
            (mark["turn_id"], mark["speaker"]): mark["ms"] / 1000 for mark in reversed(self.marks)
        }


@receiver(post_delete, sender=Recording)
def _delete_recording_file(sender: type[Recording], instance: Recording, **kwargs: Any) -> None:
    """The file goes with its record (its session, agent or user deleted, or
    retention), once the deletion is committed: a rollback keeps both."""
    name, storage = instance.file.name, instance.file.storage
    if name:
        transaction.on_commit(lambda: storage.delete(name))
