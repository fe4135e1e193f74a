"""The root Ninja API mounted at ``/api/``; each app contributes one router."""

from ninja import NinjaAPI

from accounts.api import router as auth_router
from agents.api import router as agents_router
from calls.api import router as calls_router

from . import errors
from .health import router as health_router

api = NinjaAPI(
    title="Voice Agent Platform API",
    version="1.0.0",
    urls_namespace="api",
    description="Agents, call sessions and their transcripts. Authenticate with "
    "`POST /api/auth/login` and send `Authorization: Bearer <access>`.",
)
errors.install(api)
api.add_router("/auth", auth_router)
api.add_router("/agents", agents_router)
api.add_router("", calls_router)
api.add_router("", health_router)
