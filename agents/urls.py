"""Agent builder pages under /agents/."""

from django.urls import path

from . import views

app_name = "agents"
urlpatterns = [
    path("", views.AgentListView.as_view(), name="list"),
    path("new/", views.AgentCreateView.as_view(), name="create"),
    path("<int:pk>/edit/", views.AgentUpdateView.as_view(), name="edit"),
    path("<int:pk>/delete/", views.AgentDeleteView.as_view(), name="delete"),
]
