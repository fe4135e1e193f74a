"""Scenarios: scripted calls that check an agent still behaves after a change.

A :class:`Scenario` is a list of caller lines, each with what the agent's
answer must satisfy; a :class:`ScenarioRun` is one playing of it through the
real pipeline (scenarios/runner.py) with the outcome of every turn. Runs are
kept per scenario so a page can set the last one beside the one before.
"""

import uuid

from django.db import models

NAME_MAX = 100
# A scenario is a short conversation: each turn is a real pipeline turn, and a
# run must finish within its task's time limit (scenarios/tasks.py).
TURNS_MAX = 20
# The wire protocol's default VOICE_MAX_TEXT_CHARS: a longer line could never be typed.
SAY_MAX = 2000
# Words or a phrase to look for in the reply, not a reply of its own.
PHRASE_MAX = 200
TOOL_NAME_MAX = 64


class Scenario(models.Model):
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="scenarios")
    name = models.CharField(max_length=NAME_MAX)
    # [{"say": str, "expect": {"intent"?, "contains"?, "not_contains"?, "tool"?,
    # "ends_call"?}}], validated by the API schema (scenarios/schemas.py).
    turns = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def recent_runs(self) -> list["ScenarioRun"]:
        """The last run and the one before it, newest first."""
        return list(self.runs.order_by("-created_at")[:2])


class ScenarioRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # [{"say", "reply", "intent", "checks": [{"name", "ok", "detail"}], "ms"}]
    turns = models.JSONField(default=list, blank=True)
    # Why the run as a whole failed before or between turns (no call, quota, ...).
    error = models.CharField(max_length=300, blank=True)
    # The call the run played, kept with its transcript like any other call.
    session = models.ForeignKey(
        "calls.CallSession", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.scenario} · {self.status}"

    @property
    def done(self) -> bool:
        return self.status in (self.Status.PASSED, self.Status.FAILED)
