"""Scenario pages (scenarios/views.py)."""

from django.urls import path

from . import views

app_name = "scenarios"
urlpatterns = [
    path("agents/<int:agent_id>/scenarios/", views.agent_scenarios, name="list"),
    path("agents/<int:agent_id>/scenarios/new/", views.new, name="new"),
    path("scenarios/<int:scenario_id>/run/", views.run, name="run_now"),
    path("scenario-runs/<uuid:run_id>/", views.run_detail, name="run"),
    path("sessions/<uuid:session_id>/scenario/", views.from_session, name="from_session"),
]
