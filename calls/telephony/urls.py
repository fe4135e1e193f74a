"""Twilio's webhooks under /telephony/ (the URLs an operator enters for a number)."""

from django.urls import path

from . import twilio

app_name = "telephony"
urlpatterns = [
    path("twilio/voice", twilio.voice, name="twilio-voice"),
    path("twilio/status", twilio.status, name="twilio-status"),
]
