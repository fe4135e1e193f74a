"""One JSON error shape for the whole REST API, installed on the root NinjaAPI.

Every error answers ``{"detail": "<sentence for a human>"}``; validation errors
(422) add ``"errors": [{"field": "email", "message": "..."}]`` so a client can
put each message next to its input. A 401 that a client must tell apart from
another (a login that needs a two-factor code) and a reached quota (429, with
``Retry-After`` when it is known) add a stable ``"code"``. Nothing a client
sends ends in a 500 page: unexpected exceptions are logged and answered with a
JSON 500 as a last resort.
"""

import logging
from collections.abc import Iterable
from typing import Annotated, Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from pydantic import Field, field_validator

logger = logging.getLogger(__name__)

# Ninja prefixes a location with where the value came from and, for a body
# schema, the view's parameter name; clients only know the field path.
PARAM_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}
# Largest primary key PostgreSQL's bigint holds; a bigger id in a URL is a 422,
# not a database overflow.
DbId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class BodyNotAnObject(ValueError):
    """A request body that is JSON but not an object (``false``, ``[]``, ``"x"``)."""


class ObjectBodyParser(Parser):
    """Ninja's JSON body parser, refusing bodies that are not JSON objects.

    Every body of the API is an object; Ninja took any other JSON value for an
    empty body, so a PATCH of ``false`` answered 200 and changed nothing.
    """

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise BodyNotAnObject("The request body must be a JSON object.")
        return data


class InputSchema(Schema):
    """Base of every request schema: text PostgreSQL cannot store is a field error."""

    @field_validator("*", mode="after")
    @classmethod
    def no_nul_characters(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("Text cannot contain NUL (\\u0000) characters.")
        return value


class ErrorOut(Schema):
    detail: str


class CodedErrorOut(ErrorOut):
    code: str = Field(description="Stable reason a client can branch on, e.g. `mfa_required`.")


class FieldErrorOut(Schema):
    field: str
    message: str


class ValidationErrorOut(Schema):
    detail: str
    errors: list[FieldErrorOut]


class QuotaErrorOut(ErrorOut):
    code: str  # which quota: calls.quotas.ACTIVE_CALLS or SESSIONS_PER_HOUR


class QuotaExceeded(Exception):
    """A per-user quota was reached (calls/quotas.py): 429 with a stable ``code``
    and, when it is known when the quota frees up, ``Retry-After``."""

    def __init__(self, code: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


class FieldError(Exception):
    """A request that is well-formed but invalid: 422 naming each bad field."""

    def __init__(self, errors: dict[str, str | Iterable[str]]) -> None:
        self.errors = {
            field: message if isinstance(message, str) else " ".join(message)
            for field, message in errors.items()
        }
        super().__init__(self.errors)


class CodedAuthenticationError(AuthenticationError):
    """A 401 whose body names a stable ``code`` beside the ``detail`` sentence."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message=message)
        self.code = code


def field_error(field: str, message: str) -> FieldError:
    return FieldError({field: message})


def from_django(exc: DjangoValidationError) -> FieldError:
    """A model's ``full_clean()`` errors, keyed by model field (= API field)."""
    if hasattr(exc, "error_dict"):
        return FieldError({field: exc.message_dict[field] for field in exc.error_dict})
    return FieldError({"__all__": exc.messages})


def _field_of(loc: list[Any] | tuple[Any, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in PARAM_SOURCES:
        source = parts.pop(0)
        # A body schema parameter adds its own name ("payload") before the field;
        # alone, it means the body itself is missing.
        if source == "body":
            parts = parts[1:]
    return ".".join(str(part) for part in parts) or "body"


def _unprocessable(request: HttpRequest, api: NinjaAPI, errors: list[dict[str, str]]):
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return api.create_response(
        request, {"detail": f"Invalid input. {detail}", "errors": errors}, status=422
    )


def install(api: NinjaAPI) -> None:
    """Register the handlers on ``api`` (replaces Ninja's defaults)."""

    @api.exception_handler(NinjaValidationError)
    def ninja_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        errors = [
            {
                "field": _field_of(error.get("loc", ())),
                "message": str(error.get("msg", "Invalid value.")).removeprefix("Value error, "),
            }
            for error in exc.errors
        ]
        return _unprocessable(request, api, errors)

    @api.exception_handler(FieldError)
    def field(request: HttpRequest, exc: FieldError) -> HttpResponse:
        errors = [{"field": name, "message": msg} for name, msg in exc.errors.items()]
        return _unprocessable(request, api, errors)

    @api.exception_handler(DjangoValidationError)
    def django_validation(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        return field(request, from_django(exc))

    @api.exception_handler(DataError)
    def data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
        # Values the schema accepts but PostgreSQL cannot store; the input
        # schemas refuse those they know of (NUL characters, pages past the
        # OFFSET range), so this is a last resort. The database does not say
        # which field: the 422 shape, with no field errors.
        return api.create_response(
            request,
            {"detail": "Invalid input: a value cannot be stored.", "errors": []},
            status=422,
        )

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        message = str(exc)
        if message == "Unauthorized":  # Ninja's default when no credentials were sent
            message = "Authentication required: send 'Authorization: Bearer <access token>'."
        body = {"detail": message}
        if isinstance(exc, CodedAuthenticationError):
            body["code"] = exc.code
        response = api.create_response(request, body, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    @api.exception_handler(QuotaExceeded)
    def quota_exceeded(request: HttpRequest, exc: QuotaExceeded) -> HttpResponse:
        body = {"detail": exc.message, "code": exc.code}
        response = api.create_response(request, body, status=429)
        if exc.retry_after_s is not None:
            response["Retry-After"] = str(exc.retry_after_s)
        return response

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        message = str(exc)
        if isinstance(exc.__cause__, BodyNotAnObject):  # Ninja wraps the parser's error
            message = str(exc.__cause__)
        elif message.startswith("Cannot parse request body"):
            message = "The request body is not valid JSON."
        return api.create_response(request, {"detail": message}, status=exc.status_code)

    @api.exception_handler(SuspiciousOperation)
    def suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
        if isinstance(exc, RequestDataTooBig):
            message = "The request body is too large."
            return api.create_response(request, {"detail": message}, status=413)
        return api.create_response(request, {"detail": "Bad request."}, status=400)

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return api.create_response(request, {"detail": "Not found."}, status=404)

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("Unhandled API error on %s %s", request.method, request.path)
        return api.create_response(
            request, {"detail": "Internal server error. It has been logged."}, status=500
        )
