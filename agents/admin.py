"""Admin for agents (operators' personas, searchable and grouped by purpose)
and their knowledge entries."""

from django.contrib import admin

from .forms import ToolsFormMixin
from .models import Agent, KnowledgeEntry


class KnowledgeInline(admin.StackedInline):
    model = KnowledgeEntry
    extra = 0
    fields = ("title", "content")
    show_change_link = True


class AgentAdminForm(ToolsFormMixin):
    """The admin's agent form: tool header secrets are masked as in the builder."""

    class Meta:
        model = Agent
        fields = "__all__"


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentAdminForm
    list_display = (
        "name",
        "owner",
        "is_active",
        "phone_number",
        "language",
        "responder_model",
        "updated_at",
    )
    list_filter = (
        "is_active",
        "record_calls",
        "language",
        "classifier_model",
        "responder_model",
        "created_at",
    )
    search_fields = ("name", "description", "phone_number", "owner__username", "owner__email")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("owner", "name", "description", "is_active")}),
        ("Telephony", {"fields": ("phone_number",)}),
        ("Recording", {"fields": ("record_calls",)}),
        (
            "Conversation",
            {
                "fields": (
                    "system_prompt",
                    "greeting",
                    "language",
                    "intents",
                    "examples",
                    "routes",
                )
            },
        ),
        ("Tools", {"fields": ("tools",)}),
        (
            "Models",
            {
                "fields": (
                    ("classifier_model", "classifier_temperature"),
                    ("responder_model", "responder_temperature"),
                    "voice",
                )
            },
        ),
        ("Timestamps", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = [KnowledgeInline]


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    list_display = ("title", "agent", "passage_count", "updated_at")
    search_fields = ("title", "content", "agent__name")
    list_select_related = ("agent",)
    autocomplete_fields = ("agent",)
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="passages")
    def passage_count(self, entry: KnowledgeEntry) -> int:
        return entry.passages.count()
