"""Agent pages: list with search, create, edit, delete, and the agent's knowledge
entries (add, edit, delete) on its edit page. Only the owner's agents exist here."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Count, Q, QuerySet
from django.forms import Form, ModelForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse, reverse_lazy
from django.views.generic import CreateView, DeleteView, ListView, UpdateView

from calls.models import CallSession

from .forms import MODEL_SUGGESTIONS, PERSONAS, VOICE_SUGGESTIONS, AgentForm, KnowledgeForm
from .models import Agent, KnowledgeEntry


class OwnedAgentMixin(LoginRequiredMixin):
    """Restrict every lookup to the signed-in user's agents (anyone else's is a 404)."""

    def get_queryset(self) -> QuerySet[Agent]:
        return Agent.objects.filter(owner=self.request.user)  # type: ignore[attr-defined]


class AgentListView(OwnedAgentMixin, ListView):
    template_name = "agents/list.html"
    context_object_name = "agents"
    paginate_by = 20

    def get_queryset(self) -> QuerySet[Agent]:
        agents = (
            super()
            .get_queryset()
            .annotate(session_count=Count("sessions"))
            .order_by("-created_at", "-id")
        )
        query = self.request.GET.get("q", "").strip()
        if query:
            agents = agents.filter(Q(name__icontains=query) | Q(description__icontains=query))
        return agents

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(q=self.request.GET.get("q", "").strip(), **kwargs)


class AgentFormMixin(OwnedAgentMixin):
    form_class: Any = AgentForm
    template_name: str | None = "agents/form.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(  # type: ignore[misc]
            personas=PERSONAS,
            model_suggestions=MODEL_SUGGESTIONS,
            voice_suggestions=VOICE_SUGGESTIONS,
            **kwargs,
        )

    def get_success_url(self) -> str:
        return reverse("agents:list")


class AgentCreateView(AgentFormMixin, CreateView):
    def form_valid(self, form: ModelForm) -> HttpResponse:
        form.instance.owner = self.request.user
        messages.success(self.request, f"Agent “{form.instance.name}” created.")
        return super().form_valid(form)


class AgentUpdateView(AgentFormMixin, UpdateView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            knowledge=self.object.knowledge.all(), knowledge_form=KnowledgeForm(), **kwargs
        )

    def form_valid(self, form: ModelForm) -> HttpResponse:
        messages.success(self.request, f"Agent “{form.instance.name}” saved.")
        return super().form_valid(form)


class KnowledgeMixin(LoginRequiredMixin):
    """Entries of one of the signed-in user's agents (anyone else's is a 404)."""

    form_class: Any = KnowledgeForm
    template_name: str | None = "agents/knowledge_form.html"
    kwargs: dict[str, Any]
    request: HttpRequest

    def agent(self) -> Agent:
        return get_object_or_404(Agent, pk=self.kwargs["pk"], owner=self.request.user)

    def get_queryset(self) -> QuerySet[KnowledgeEntry]:
        return KnowledgeEntry.objects.filter(agent=self.agent())

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(agent=self.agent(), **kwargs)  # type: ignore[misc]

    def get_success_url(self) -> str:
        return reverse("agents:edit", args=[self.kwargs["pk"]]) + "#knowledge"


class KnowledgeCreateView(KnowledgeMixin, CreateView):
    def get_form_kwargs(self) -> dict[str, Any]:
        # The entry's agent is known before validation: the entry limit counts its siblings.
        return {**super().get_form_kwargs(), "instance": KnowledgeEntry(agent=self.agent())}

    def form_valid(self, form: ModelForm) -> HttpResponse:
        messages.success(self.request, f"Knowledge “{form.instance.title}” added.")
        return super().form_valid(form)


class KnowledgeUpdateView(KnowledgeMixin, UpdateView):
    pk_url_kwarg = "kid"

    def form_valid(self, form: ModelForm) -> HttpResponse:
        messages.success(self.request, f"Knowledge “{form.instance.title}” saved.")
        return super().form_valid(form)


class KnowledgeDeleteView(KnowledgeMixin, DeleteView):
    pk_url_kwarg = "kid"
    http_method_names = ["post"]
    form_class = Form  # a bare confirmation: the button on the agent's page

    def form_valid(self, form: Form) -> HttpResponse:
        messages.success(self.request, f"Knowledge “{self.object.title}” deleted.")
        return super().form_valid(form)


class AgentDeleteView(OwnedAgentMixin, DeleteView):
    template_name = "agents/confirm_delete.html"
    context_object_name = "agent"
    success_url = reverse_lazy("agents:list")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        agent = self.get_object()
        # Deleting the agent would cascade into a live conversation's record.
        if agent.sessions.filter(status=CallSession.Status.ACTIVE).exists():
            messages.error(request, "End the agent's active calls before deleting it.")
            return redirect("agents:edit", pk=agent.pk)
        messages.success(request, f"Agent “{agent.name}” deleted.")
        return super().post(request, *args, **kwargs)
