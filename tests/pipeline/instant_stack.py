"""A Redis database of their own for pipeline processes with other settings.

``celery_workers`` (conftest) serves the session's ``REDIS_URL`` with the
default engines. Workers started with other settings (the instant engines,
say) must not share its broker: they would take the other tests' turns and
answer them with the wrong engines, and the default workers theirs.
:func:`isolated_redis_url` names another database of the same Redis server;
give it to daphne and the workers as both ``REDIS_URL`` and
``CELERY_BROKER_URL`` (``conftest.start_workers`` starts them).
"""

import os
from urllib.parse import urlsplit, urlunsplit

# The last of Redis's 16 default databases: ``make run`` uses 0 and test
# sessions are handed low indices. INSTANT_STACK_REDIS_DB picks another one
# where two such stacks run on one Redis at the same time.
DEFAULT_DB = 15


def isolated_redis_url(base_url: str) -> str:
    """``base_url`` with its database index replaced by one no test session uses."""
    db = int(os.environ.get("INSTANT_STACK_REDIS_DB", DEFAULT_DB))
    parts = urlsplit(base_url)
    if parts.path.strip("/") == str(db):
        raise RuntimeError(f"Redis DB {db} is the session's own; set INSTANT_STACK_REDIS_DB.")
    return urlunsplit(parts._replace(path=f"/{db}"))
