"""Admin for scenarios, with their runs inline and read-only (a run's record is never edited)."""

from django.contrib import admin
from django.http import HttpRequest

from .models import Scenario, ScenarioRun


class ScenarioRunInline(admin.TabularInline):
    model = ScenarioRun
    fields = ("id", "status", "error", "session", "created_at", "finished_at")
    readonly_fields = fields
    extra = 0
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Scenario)
class ScenarioAdmin(admin.ModelAdmin):
    list_display = ("name", "agent", "created_at")
    list_select_related = ("agent",)
    search_fields = ("name", "agent__name")
    inlines = [ScenarioRunInline]
