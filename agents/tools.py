"""The agent's ``tools``: what they may hold, and how their header secrets stay secret.

Consumes the operator's tool list (API, builder page, admin); produces a
validated list (:func:`validate_tools`), the same list with header values
masked for display (:func:`masked_tools`) and, on an update, the new list with
every masked value replaced by the stored secret (:func:`keep_secrets`).

Two kinds of entries (docs/tools.md):

* an HTTP tool ``{name, description, url, method, parameters, headers, timeout_s}``
  the responder may call with arguments valid under ``parameters`` (a JSON
  Schema object);
* a built-in, switched on by its name alone: ``{"name": "end_call"}``,
  ``{"name": "lookup_knowledge"}``, ``{"name": "transfer_call", "to": "+1555..."}``.
  The transfer number is the operator's, never the model's: a caller cannot
  talk the agent into dialling anywhere.
"""

import json
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
from django.core.exceptions import ValidationError

from voiceproj.phone import is_e164

TOOLS_MAX = 10
TOOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
TOOL_DESCRIPTION_MAX = 500
TOOL_URL_MAX = 2000
TOOL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Every schema goes into every prompt of the agent's turns: keep them small.
TOOL_PARAMETERS_MAX_CHARS = 4000
TOOL_HEADERS_MAX = 10
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
HEADER_VALUE_MAX = 1000
# Set by the tool runner itself; an operator's value would break the request
# or, for Host, the address pinning of the SSRF guard (docs/security.md).
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "content-type"}
)
TIMEOUT_MIN_S = 0.5
TIMEOUT_MAX_S = 15.0
DEFAULT_TIMEOUT_S = 5.0
# What a secret header value reads as outside the database; sent back unchanged,
# it means "keep the stored value".
SECRET_MASK = "********"

BUILTINS: dict[str, str] = {
    "end_call": "End the call when the caller has nothing more to ask.",
    "transfer_call": "Transfer the caller to a human colleague.",
    "lookup_knowledge": "Look up facts in the agent's knowledge base to answer a question.",
}
HTTP_KEYS = frozenset(
    {"name", "description", "url", "method", "parameters", "headers", "timeout_s"}
)
BUILTIN_KEYS = frozenset({"name", "description", "to"})
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def is_builtin(tool: dict[str, Any]) -> bool:
    return tool.get("name") in BUILTINS


def validate_tools(value: Any) -> None:
    """Raise a ValidationError naming the tool and the field at fault."""
    if not isinstance(value, list):
        raise ValidationError("Tools are a list of objects.")
    if len(value) > TOOLS_MAX:
        raise ValidationError(f"At most {TOOLS_MAX} tools.")
    if _holds_nul(value):
        # PostgreSQL cannot store U+0000 in a JSON string.
        raise ValidationError("Tools cannot contain NUL (\\u0000) characters.")
    seen: set[str] = set()
    for number, tool in enumerate(value, start=1):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise ValidationError(f"Tool {number} must be an object with a name.")
        name = tool["name"]
        if not TOOL_NAME.match(name):
            raise ValidationError(
                f"Tool {number}: the name {name[:50]!r} must start with a letter and hold "
                "only letters, digits and underscores (at most 48)."
            )
        if name in seen:
            raise ValidationError(f"Tool names must be unique: {name!r} appears twice.")
        seen.add(name)
        if is_builtin(tool):
            _validate_builtin(name, tool)
        else:
            _validate_http(name, tool)


def _holds_nul(value: Any) -> bool:
    """Whether any key or string in ``value`` holds U+0000 (iterative: any nesting depth)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _validate_builtin(name: str, tool: dict[str, Any]) -> None:
    extra = tool.keys() - BUILTIN_KEYS
    if extra & {"url", "method", "parameters", "headers"}:
        raise ValidationError(
            f"Tool {name!r}: {name} is a built-in; an HTTP tool needs another name."
        )
    if extra:
        raise ValidationError(f"Tool {name!r}: unknown fields {sorted(extra)}.")
    _check_description(name, tool, required=False)
    if name == "transfer_call":
        if not isinstance(tool.get("to"), str) or not is_e164(tool["to"]):
            raise ValidationError(
                "Tool 'transfer_call': `to` must be an E.164 number, e.g. +15551234567."
            )
    elif "to" in tool:
        raise ValidationError(f"Tool {name!r}: only transfer_call takes `to`.")


def _validate_http(name: str, tool: dict[str, Any]) -> None:
    extra = tool.keys() - HTTP_KEYS
    if extra:
        raise ValidationError(f"Tool {name!r}: unknown fields {sorted(extra)}.")
    _check_description(name, tool, required=True)
    url = tool.get("url")
    if not isinstance(url, str) or len(url) > TOOL_URL_MAX:
        raise ValidationError(f"Tool {name!r}: `url` is required, at most {TOOL_URL_MAX} chars.")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise ValidationError(f"Tool {name!r}: `url` has a bad port.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"Tool {name!r}: `url` must be an http or https URL with a host.")
    if parts.username or parts.password:
        # Credentials in a URL are shown wherever the URL is: use a header.
        raise ValidationError(
            f"Tool {name!r}: put credentials in `headers`, not in the URL (they stay secret there)."
        )
    if tool.get("method", "POST") not in TOOL_METHODS:
        raise ValidationError(f"Tool {name!r}: `method` must be one of {', '.join(TOOL_METHODS)}.")
    _check_parameters(name, tool.get("parameters", EMPTY_PARAMETERS))
    _check_headers(name, tool.get("headers", {}))
    timeout = tool.get("timeout_s", DEFAULT_TIMEOUT_S)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not TIMEOUT_MIN_S <= timeout <= TIMEOUT_MAX_S
    ):
        raise ValidationError(
            f"Tool {name!r}: `timeout_s` is a number from {TIMEOUT_MIN_S} to {TIMEOUT_MAX_S}."
        )


def _check_description(name: str, tool: dict[str, Any], required: bool) -> None:
    description = tool.get("description", "")
    if not isinstance(description, str) or len(description) > TOOL_DESCRIPTION_MAX:
        raise ValidationError(
            f"Tool {name!r}: `description` is text of at most {TOOL_DESCRIPTION_MAX} characters."
        )
    if required and not description.strip():
        raise ValidationError(
            f"Tool {name!r}: `description` is required; the model reads it to decide when "
            "to call the tool."
        )


def _check_parameters(name: str, parameters: Any) -> None:
    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        raise ValidationError(
            f'Tool {name!r}: `parameters` must be a JSON Schema with "type": "object".'
        )
    try:
        size = len(json.dumps(parameters))
    except RecursionError:
        size = TOOL_PARAMETERS_MAX_CHARS + 1  # nested deeper than anyone means
    if size > TOOL_PARAMETERS_MAX_CHARS:
        raise ValidationError(
            f"Tool {name!r}: `parameters` is longer than {TOOL_PARAMETERS_MAX_CHARS} characters."
        )
    try:
        jsonschema_rs.meta.validate(parameters)
        arguments_validator(parameters)
    except (jsonschema_rs.ValidationError, ValueError) as exc:
        message = str(getattr(exc, "message", exc)).splitlines()[0][:200]
        raise ValidationError(
            f"Tool {name!r}: `parameters` is not a valid JSON Schema: {message}"
        ) from exc


def _no_remote_schemas(uri: str) -> Any:
    # Fetching a "$ref" would be a request to wherever an operator points it
    # (SSRF from the web process) and a call home; only local refs ("#/...") work.
    raise ValueError(f"remote $ref {uri!r} is not allowed")


def arguments_validator(parameters: dict[str, Any]) -> jsonschema_rs.Validator:
    """A validator of tool arguments under ``parameters``, never fetching anything."""
    return jsonschema_rs.validator_for(parameters, retriever=_no_remote_schemas)


def _check_headers(name: str, headers: Any) -> None:
    if not isinstance(headers, dict) or len(headers) > TOOL_HEADERS_MAX:
        raise ValidationError(
            f"Tool {name!r}: `headers` is an object of at most {TOOL_HEADERS_MAX} names."
        )
    for header, value in headers.items():
        if not HEADER_NAME.match(header) or header.lower() in RESERVED_HEADERS:
            raise ValidationError(f"Tool {name!r}: {header[:70]!r} is not a header you can set.")
        if (
            not isinstance(value, str)
            or len(value) > HEADER_VALUE_MAX
            or any(c in value for c in "\r\n\x00")
        ):
            raise ValidationError(
                f"Tool {name!r}: the value of header {header!r} is one line of text "
                f"(at most {HEADER_VALUE_MAX} characters)."
            )


def masked_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``tools`` with every header value replaced by :data:`SECRET_MASK`."""
    return [
        {**tool, "headers": dict.fromkeys(tool["headers"], SECRET_MASK)}
        if tool.get("headers")
        else tool
        for tool in tools
    ]


def keep_secrets(new: Any, stored: list[dict[str, Any]]) -> Any:
    """``new`` with each header still reading :data:`SECRET_MASK` given its stored value.

    A header is matched by tool name and header name; a mask with nothing
    stored behind it stays as sent, and validation keeps it (the operator
    then sees a value they never typed, so they notice).
    """
    if not isinstance(new, list):
        return new
    secrets = {
        (tool.get("name"), header): value
        for tool in stored
        if isinstance(tool, dict) and isinstance(tool.get("headers"), dict)
        for header, value in tool["headers"].items()
    }
    merged = []
    for tool in new:
        if isinstance(tool, dict) and isinstance(tool.get("headers"), dict):
            headers = {
                header: secrets.get((tool.get("name"), header), value)
                if value == SECRET_MASK
                else value
                for header, value in tool["headers"].items()
            }
            tool = {**tool, "headers": headers}
        merged.append(tool)
    return merged


def tool_specs(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the model is offered of each tool: name, description, parameters.

    Built-ins get their own description and parameters; no header, URL or
    transfer number ever reaches a prompt or the job (secrets stay in the database).
    """
    specs = []
    for tool in tools:
        name = tool["name"]
        description = tool.get("description") or BUILTINS.get(name, "")
        if name == "lookup_knowledge":
            parameters: dict[str, Any] = {
                "type": "object",
                "properties": {"query": {"type": "string", "maxLength": 300}},
                "required": ["query"],
            }
        else:
            parameters = tool.get("parameters", EMPTY_PARAMETERS)
        specs.append({"name": name, "description": description, "parameters": parameters})
    return specs
