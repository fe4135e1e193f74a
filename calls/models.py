"""Call sessions and their turns: the persisted record of every conversation."""

import uuid

from django.conf import settings
from django.db import models


class CallSession(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        ERROR = "error", "Error"

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

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["user", "-started_at"]),
            models.Index(fields=["user", "status"]),
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
