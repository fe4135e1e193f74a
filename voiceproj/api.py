"""The root Ninja API mounted at ``/api/``; each app contributes one router."""

from typing import Any

from django.http import Http404, HttpRequest
from ninja import NinjaAPI, Router
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation

from accounts.api import router as auth_router
from agents.api import router as agents_router
from calls.api import router as calls_router
from calls.scenarios.api import router as scenarios_router

from . import errors
from .health import router as health_router

ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
VALIDATION_REF = {
    "application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrorOut"}}
}


class VoiceOpenAPISchema(OpenAPISchema):
    """Ninja's schema plus the answers the handlers in ``errors`` and the throttles give."""

    def operation_details(self, operation: Operation) -> dict[str, Any]:
        details = super().operation_details(operation)
        responses = details["responses"]
        if details.get("security"):
            responses.setdefault(
                401, {"description": "Missing, invalid or expired token", "content": ERROR_REF}
            )
        if "requestBody" in details:
            responses.setdefault(
                400, {"description": "Body is not a JSON object", "content": ERROR_REF}
            )
        if "requestBody" in details or details.get("parameters"):
            # errors.ninja_validation answers a malformed id, query or body.
            responses.setdefault(422, {"description": "Invalid input", "content": VALIDATION_REF})
        if operation.throttle_objects:
            # An operation may state its own 429 (the login's two-factor limit);
            # the address budget's Retry-After applies to it all the same.
            too_many = responses.setdefault(
                429,
                {
                    "description": "Too many requests from this address (API_AUTH_RATE)",
                    "content": ERROR_REF,
                },
            )
            too_many.setdefault(
                "headers",
                {
                    "Retry-After": {
                        "description": "Seconds until a request may succeed",
                        "schema": {"type": "integer"},
                    }
                },
            )
        return details


class VoiceAPI(NinjaAPI):
    """NinjaAPI whose schema is a :class:`VoiceOpenAPISchema`."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        return VoiceOpenAPISchema(self, path_prefix)


api = VoiceAPI(
    title="Voice Agent Platform API",
    version="1.0.0",
    urls_namespace="api",
    description="Agents, call sessions and their transcripts. Authenticate with "
    "`POST /api/auth/login` and send `Authorization: Bearer <access>`.",
    parser=errors.ObjectBodyParser(),
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
