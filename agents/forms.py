"""The agent builder form: a ModelForm, so the model's validators decide what is valid."""

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .models import (
    DEFAULT_CLASSIFIER_MODEL,
    DEFAULT_RESPONDER_MODEL,
    DEFAULT_VOICE,
    Agent,
    KnowledgeEntry,
    default_intents,
)
from .tools import keep_secrets, masked_tools

# Suggestions offered in the model and voice inputs (a <datalist>): any other
# model name the configured provider knows is accepted too.
MODEL_SUGGESTIONS = [
    DEFAULT_CLASSIFIER_MODEL,
    DEFAULT_RESPONDER_MODEL,
    "qwen2.5:0.5b",
    "llama3.2:3b",
]
VOICE_SUGGESTIONS = [DEFAULT_VOICE]

# Starting points for the system prompt editor (the page's "Start from a persona").
PERSONAS: dict[str, dict[str, str]] = {
    "support": {
        "label": "Customer support",
        "system_prompt": (
            "You are a patient customer support agent for an online shop. Answer in one or "
            "two short spoken sentences, ask for the order number when you need it, and "
            "never invent order details."
        ),
        "greeting": "Hi, thanks for calling support. How can I help?",
    },
    "receptionist": {
        "label": "Receptionist",
        "system_prompt": (
            "You are the friendly receptionist of a dental clinic. Help callers book, move or "
            "cancel appointments. Keep answers brief and confirm dates back to the caller."
        ),
        "greeting": "Good day, you have reached the clinic. How may I help you?",
    },
    "tutor": {
        "label": "Language tutor",
        "system_prompt": (
            "You are an encouraging English tutor. Speak simply, correct one mistake at a "
            "time, and end each answer with a short question that keeps the learner talking."
        ),
        "greeting": "Hello! What would you like to practise today?",
    },
}


class JSONTextField(forms.JSONField):
    """A JSON value edited as indented text; unreadable JSON says what shape is expected."""

    def __init__(self, *, shape: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shape = shape

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except ValidationError as exc:
            raise ValidationError(f"{self.label or 'This field'} must be {self.shape}.") from exc


class ToolsField(forms.JSONField):
    """The tools list as JSON text, header values shown masked (they are secrets)."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, str):
            return value  # the operator's own input, shown back after an error
        return json.dumps(masked_tools(value or []), indent=2, ensure_ascii=False)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return []
        try:
            return super().to_python(value)
        except ValidationError as exc:
            raise ValidationError("Tools must be a JSON list of tool objects.") from exc


class ToolsFormMixin(forms.ModelForm):
    """A ModelForm whose ``tools`` keeps stored header secrets sent back masked."""

    tools = ToolsField(
        required=False,
        initial=list,
        help_text="JSON list; header values show as ******** and keep their stored value "
        "unless you type a new one. See docs/tools.md.",
        widget=forms.Textarea(attrs={"rows": 10, "class": "mono"}),
    )

    def clean_tools(self) -> Any:
        return keep_secrets(self.cleaned_data.get("tools"), self.instance.tools or [])


class ExamplesField(forms.Field):
    """Few-shot examples as plain lines, ``intent: what a caller says``, one per line.

    Easier to write than JSON; the model still validates the names and bounds.
    """

    widget = forms.Textarea

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if not isinstance(value, dict):
            return ""
        return "\n".join(f"{name}: {u}" for name, utterances in value.items() for u in utterances)

    def to_python(self, value: Any) -> dict[str, list[str]]:
        examples: dict[str, list[str]] = {}
        for number, line in enumerate(str(value or "").splitlines(), 1):
            if not line.strip():
                continue
            name, colon, utterance = line.partition(":")
            if not colon or not name.strip() or not utterance.strip():
                raise ValidationError(
                    f"Line {number}: write each example as “intent: what the caller says”."
                )
            examples.setdefault(name.strip(), []).append(utterance.strip())
        return examples


class AgentForm(ToolsFormMixin):
    examples = ExamplesField(
        required=False,
        label="Examples",
        help_text="Optional. One per line, “intent: what a caller says”, e.g. "
        "“farewell: that's all, thanks”. A few per intent teach the classifier your callers' "
        "words.",
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}),
    )
    intents = JSONTextField(
        label="Intents",
        shape="a JSON list of {name, description}",
        initial=default_intents,
        help_text="One row per label the classifier may choose; names must be unique.",
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}),
    )
    routes = JSONTextField(
        label="Routes",
        shape='a JSON object of intent name → {"action": ...}',
        required=False,
        initial=dict,
        help_text='What the dialog does per intent, e.g. {"hours": {"action": "knowledge"}, '
        '"agent": {"action": "transfer", "to": "+15551234567"}}. Actions: answer, say '
        "(text), knowledge, tool (tool), transfer (to), end (optional text). Intents "
        "without a route are answered; a farewell ends the call.",
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}),
    )

    def clean_routes(self) -> Any:
        # An emptied box means "no routes", not null.
        return self.cleaned_data["routes"] or {}

    class Meta:
        model = Agent
        fields = [
            "name",
            "description",
            "system_prompt",
            "greeting",
            "language",
            "intents",
            "examples",
            "routes",
            "classifier_model",
            "classifier_temperature",
            "responder_model",
            "responder_temperature",
            "voice",
            "is_active",
            "phone_number",
            "tools",
            "record_calls",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "system_prompt": forms.Textarea(attrs={"rows": 8}),
            "greeting": forms.Textarea(attrs={"rows": 2}),
            "classifier_model": forms.TextInput(attrs={"list": "model-options"}),
            "responder_model": forms.TextInput(attrs={"list": "model-options"}),
            "voice": forms.TextInput(attrs={"list": "voice-options"}),
            "phone_number": forms.TextInput(
                attrs={"type": "tel", "autocomplete": "off", "placeholder": "+15551234567"}
            ),
            "classifier_temperature": forms.NumberInput(attrs={"step": "0.1", "min": 0, "max": 2}),
            "responder_temperature": forms.NumberInput(attrs={"step": "0.1", "min": 0, "max": 2}),
        }
        help_texts = {
            "system_prompt": "Who the agent is and how it answers. Keep spoken answers short.",
            "greeting": "Spoken when a call starts; leave empty to let the caller speak first.",
            "classifier_temperature": "0 to 2; low values make intent labels stable.",
            "responder_temperature": "0 to 2; higher values make replies more varied.",
            "phone_number": "A Twilio number in E.164 form, e.g. +15551234567: calls to it "
            "reach this agent, and outbound calls come from it. Leave empty for web calls only.",
            "record_calls": "Keep a stereo recording of each call (caller left, agent right) "
            "beside its transcript.",
        }

    def full_clean(self) -> None:
        """Mark invalid inputs so screen readers announce the error beside them."""
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                field = self.fields[name]
                described_by = f"id_{name}_error" + (
                    f" id_{name}_helptext" if field.help_text else ""
                )
                field.widget.attrs.update(
                    {"aria-invalid": "true", "aria-describedby": described_by}
                )


class KnowledgeForm(forms.ModelForm):
    """One knowledge entry of the agent being edited (its passages are split on save)."""

    class Meta:
        model = KnowledgeEntry
        fields = ["title", "content"]
        widgets = {"content": forms.Textarea(attrs={"rows": 8})}
        help_texts = {
            "content": "Facts the agent may answer from, in plain sentences; long text is "
            "split into passages for retrieval.",
        }
