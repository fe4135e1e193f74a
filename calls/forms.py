"""Forms of the call pages."""

from typing import Any

from django import forms

from agents.models import Agent

from .models import CallSession


class StartCallForm(forms.Form):
    """Pick one of the user's active agents to call."""

    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), empty_label="Choose an agent…")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = Agent.objects.filter(owner=user, is_active=True)  # type: ignore[attr-defined]


class SessionFilterForm(forms.Form):
    """The sessions list's status and channel filters and search box (by agent name)."""

    status = forms.ChoiceField(
        choices=[("", "Any status"), *CallSession.Status.choices], required=False
    )
    channel = forms.ChoiceField(
        choices=[("", "Any channel"), *CallSession.Channel.choices], required=False
    )
    q = forms.CharField(required=False, max_length=100, label="Search")
