"""WebSocket URL routes of the calls app."""

from django.urls import re_path

from .consumers import VoiceConsumer
from .telephony.media_stream import TwilioMediaStreamConsumer

# Any path segment, not just UUIDs: a malformed id then gets close code 4404
# from the consumer instead of a failed handshake the client cannot interpret.
websocket_urlpatterns = [
    re_path(r"^ws/voice/(?P<session_id>[^/]+)/$", VoiceConsumer.as_asgi()),
    # Twilio's socket: admitted by the single-use token in its `start` message.
    re_path(r"^ws/telephony/twilio/$", TwilioMediaStreamConsumer.as_asgi()),
]
