"""The database work of live calls, off the event loop and off the process's sync thread.

Consumes: the call core's synchronous ORM functions (load the session, save a
reply, check the session's state). Produces: awaitables that run them on a
small pool of threads of their own.

channels' ``database_sync_to_async`` is thread-sensitive by default: every
database call of every call in one daphne process then runs on one thread,
one after the other, and under load a call waits behind the others' queries
(a 25-caller run on a 2-core box: p95 770 ms to read a turn's history). The
core's functions are independent transactions, so they may run side by side.
The threads keep their connections (voiceproj/dbconn.py), so a web process
holds at most ``VOICE_DB_THREADS`` of them.
"""

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings

from voiceproj.dbconn import keep_connection

P = ParamSpec("P")
R = TypeVar("R")

_threads = ThreadPoolExecutor(
    max_workers=settings.VOICE_DB_THREADS,
    thread_name_prefix="call-db",
    initializer=keep_connection,
)


def call_db(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``func`` as an awaitable that runs on the calls' database threads.

    Stale connections are closed around each use, as ``database_sync_to_async`` does.
    """
    return database_sync_to_async(func, thread_sensitive=False, executor=_threads)  # type: ignore[return-value]
