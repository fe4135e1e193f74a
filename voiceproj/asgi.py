"""ASGI entry point served by daphne: HTTP to Django, WebSocket to Channels.

WebSockets pass the origin check and authentication (session cookie or JWT,
calls.auth) before URL routing picks the consumer.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproj.settings")

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from calls.auth import VoiceAuthStack  # noqa: E402
from calls.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": VoiceAuthStack(URLRouter(websocket_urlpatterns)),
    }
)
