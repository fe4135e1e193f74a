"""Project middleware."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse


def api_method_not_allowed_as_json(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Answer a 405 under ``/api/`` in the API's JSON error shape.

    Ninja answers a known path with the wrong method in plain text before any
    of the API's exception handlers run; clients parse every API error as JSON.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if response.status_code != 405 or not request.path.startswith("/api/"):
            return response
        allowed = response.get("Allow", "")
        answer = JsonResponse(
            {"detail": f"Method {request.method} is not allowed here; use {allowed}."},
            status=405,
        )
        answer["Allow"] = allowed
        return answer

    return middleware
