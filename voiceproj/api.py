"""The root Ninja API mounted at ``/api/``; each app contributes one router."""

from typing import Any

from django.http import Http404, HttpRequest
from ninja import NinjaAPI, Router
from ninja.openapi.schema import OpenAPISchema

from accounts.api import router as auth_router
from agents.api import router as agents_router
from calls.api import router as calls_router
from scenarios.api import router as scenarios_router

from . import errors
from .health import router as health_router

ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}


class VoiceAPI(NinjaAPI):
    """NinjaAPI whose schema also states the errors the handlers in ``errors`` give."""

    def get_openapi_schema(self, **kwargs: Any) -> OpenAPISchema:
        schema = super().get_openapi_schema(**kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation["responses"]
                if operation.get("security"):
                    responses.setdefault(
                        401,
                        {"description": "Missing, invalid or expired token", "content": ERROR_REF},
                    )
                if "requestBody" in operation:
                    responses.setdefault(
                        400, {"description": "Body is not valid JSON", "content": ERROR_REF}
                    )
        return schema


api = VoiceAPI(
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
api.add_router("", scenarios_router)
api.add_router("", health_router)

# Last, so it only sees paths no router matched: an unknown URL under /api/ is
# a JSON 404 like every other API error, not Django's HTML page.
unknown = Router(auth=None)


@unknown.api_operation(
    ["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", include_in_schema=False
)
def unknown_path(request: HttpRequest, rest: str) -> None:
    raise Http404(rest)


api.add_router("", unknown)
