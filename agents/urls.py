"""Agent builder pages under /agents/ (with each agent's knowledge entries)."""

from django.urls import path

from . import views

app_name = "agents"
urlpatterns = [
    path("", views.AgentListView.as_view(), name="list"),
    path("new/", views.AgentCreateView.as_view(), name="create"),
    path("<int:pk>/edit/", views.AgentUpdateView.as_view(), name="edit"),
    path("<int:pk>/delete/", views.AgentDeleteView.as_view(), name="delete"),
    path("<int:pk>/knowledge/new/", views.KnowledgeCreateView.as_view(), name="knowledge-create"),
    path(
        "<int:pk>/knowledge/<int:kid>/edit/",
        views.KnowledgeUpdateView.as_view(),
        name="knowledge-edit",
    ),
    path(
        "<int:pk>/knowledge/<int:kid>/delete/",
        views.KnowledgeDeleteView.as_view(),
        name="knowledge-delete",
    ),
]
