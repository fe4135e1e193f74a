"""Single-use tickets that admit one socket to one call.

A credential in a URL ends up in proxy access logs and browser history, so a
JWT never goes there. A socket that cannot send headers presents a ticket
instead: signed with the SECRET_KEY (Django's signing, under a salt of its
own per kind), naming the session, short-lived, and accepted once — the first
use is claimed in Redis with SET NX; if Redis cannot be reached the ticket is
refused, never accepted twice. Two kinds use it:

* ``VOICE_TICKET`` — ``?ticket=`` on ``/ws/voice/<id>/`` (from
  ``POST /api/sessions/{id}/ticket``), naming the user too;
* ``STREAM_TICKET`` — the Twilio Media Streams ``customParameters`` token.
"""

import logging
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from django.conf import settings
from django.core import signing
from redis.exceptions import RedisError

from voiceproj.pipeline import ticket_used_key

logger = logging.getLogger(__name__)
# A Redis that does not answer within this long refuses the ticket.
REDIS_TIMEOUT_S = 3


@dataclass(frozen=True)
class TicketKind:
    salt: str
    max_age_s: int

    def issue(self, session_id: str | UUID, **claims: Any) -> str:
        """A ticket admitting one socket to ``session_id``, carrying ``claims``."""
        body = {**claims, "session": str(session_id), "id": secrets.token_urlsafe(16)}
        return signing.dumps(body, salt=self.salt)

    def claims(self, ticket: object, session_id: str | UUID) -> dict[str, Any] | None:
        """The ticket's claims when its signature and age are good and it names ``session_id``."""
        if not isinstance(ticket, str):
            return None
        try:
            body = signing.loads(ticket, salt=self.salt, max_age=self.max_age_s)
        except signing.BadSignature:  # SignatureExpired included
            return None
        if not isinstance(body, dict) or body.get("session") != str(session_id):
            return None
        return body if isinstance(body.get("id"), str) else None

    async def redeem(self, ticket: object, session_id: str | UUID) -> dict[str, Any] | None:
        """The claims of a good ticket of ``session_id`` on its first use; else None."""
        body = self.claims(ticket, session_id)
        if body is None:
            return None
        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S)
        try:
            key = ticket_used_key(self.salt, body["id"])
            first = await client.set(key, "1", nx=True, ex=self.max_age_s)
        except RedisError:
            logger.exception("Ticket for session %s refused: Redis is unavailable", session_id)
            return None
        finally:
            await client.aclose()
        return body if first else None


# Long enough for a client to open the socket right after asking; a ticket
# that leaks into a log is useless half a minute later, and used at once.
VOICE_TICKET = TicketKind("calls.voice.ticket", 30)
# Twilio opens the stream within seconds of the webhook's answer.
STREAM_TICKET = TicketKind("calls.telephony.twilio.stream", 60)
