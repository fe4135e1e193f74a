"""Kept database connections for the long-lived threads of workers and calls.

Django opens a database connection per request and, with ``CONN_MAX_AGE`` 0
(the default here, as Django advises under ASGI, where request threads come
and go), closes it afterwards. On PostgreSQL a new connection costs about
7 ms (the server forks a process for it) against 0.6 ms for a query on an
open one (2-core box), and a turn touches the database four times: in the
STT, respond and dialog workers and in the call. Threads that live as long
as their process — a Celery pool process, the call core's database threads
(calls/calldb.py) — keep theirs instead, so the number of open connections
stays bounded by the number of those threads.
"""

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections


def keep_connection() -> None:
    """Let this thread's connection live ``DB_KEEP_CONNECTIONS_S`` between uses.

    Health checks go with it: a kept connection the server dropped (a restart)
    is replaced before a query fails on it.
    """
    wrapper = connections[DEFAULT_DB_ALIAS]
    wrapper.settings_dict = {
        **wrapper.settings_dict,
        "CONN_MAX_AGE": settings.DB_KEEP_CONNECTIONS_S,
        "CONN_HEALTH_CHECKS": True,
    }
