"""Call and session pages: /call/ (start and talk) and /sessions/ (the record)."""

from django.urls import path

from . import views

app_name = "calls"
urlpatterns = [
    path("call/", views.call, name="call"),
    path("call/<uuid:session_id>/", views.live, name="live"),
    path("sessions/", views.session_list, name="list"),
    path("sessions/<uuid:session_id>/", views.session_detail, name="detail"),
    path("sessions/<uuid:session_id>/end/", views.end, name="end"),
    path("sessions/<uuid:session_id>/recording.wav", views.recording, name="recording"),
    path(
        "sessions/<uuid:session_id>/transcript.<str:fmt>",
        views.export,
        name="export",
    ),
]
