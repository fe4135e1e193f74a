"""``python -m voiceproj.serve <daphne arguments>``: daphne with a polite message-size limit.

daphne's WebSocket transport (autobahn) checks each frame's header against a
maximum message and frame size before it buffers the payload, so a huge message
costs no memory. But daphne leaves autobahn's ``failByDrop`` on: a message over
the limit makes the server drop the TCP connection without a close frame, and
the client cannot tell a rejected message from a network failure. No daphne
option turns that off, and the factory that holds it is built inside
``Server.run()``; hence this launcher. It runs daphne's own command line
(every daphne argument works) with :class:`VoiceServer`, which fails such a
connection with a close frame instead: code 1009 (message too big). The same
applies to autobahn's other failures (a protocol violation closes with 1002,
invalid UTF-8 with 1007). Its connections also keep the reason an application
gives when it closes a socket, which daphne drops (django/daphne#374):
protocol v1's 4429 says in it which quota was reached.

The limit is the setting ``VOICE_MAX_WS_MESSAGE_BYTES`` (both the message and
the frame limit); ``--websocket-max-message-size`` / ``--websocket-max-frame-size``
still override it for one process.
"""

from typing import Any

from daphne.cli import CommandLineInterface  # imported first: it installs Twisted's reactor
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings

# The longest close reason the WebSocket protocol allows (RFC 6455, 5.5.1).
MAX_CLOSE_REASON_BYTES = 123


class VoiceWebSocketProtocol(WebSocketProtocol):
    """daphne's WebSocket connection; an ASGI ``websocket.close`` keeps its ``reason``."""

    def handle_reply(self, message: dict[str, Any]) -> None:
        reason = message.get("reason")
        if (
            message.get("type") != "websocket.close"
            or not reason
            or self.state == self.STATE_CONNECTING
        ):
            super().handle_reply(message)
            return
        # Cut on a character boundary: autobahn refuses a longer reason.
        reason = reason.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")
        self.sendClose(code=message.get("code") or 1000, reason=reason)


class VoiceServer(Server):
    """daphne's server; a connection that breaks the WebSocket rules gets a close
    frame, and an application's close frame keeps its reason."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # daphne calls ready_callable in run() once its protocol factories are
        # built and configured and before the reactor accepts a connection: the
        # one hook where the WebSocket factory exists and serves nobody yet.
        super().__init__(*args, ready_callable=self._configure_websockets, **kwargs)

    def _configure_websockets(self) -> None:
        self.ws_factory.setProtocolOptions(failByDrop=False)
        self.ws_factory.protocol = VoiceWebSocketProtocol


class VoiceCommandLineInterface(CommandLineInterface):
    """daphne's command line serving with :class:`VoiceServer` and the project's size limit."""

    server_class = VoiceServer

    def __init__(self) -> None:
        super().__init__()
        limit = settings.VOICE_MAX_WS_MESSAGE_BYTES
        self.parser.set_defaults(websocket_max_message_size=limit, websocket_max_frame_size=limit)


if __name__ == "__main__":
    VoiceCommandLineInterface.entrypoint()
