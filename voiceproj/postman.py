"""Build a Postman collection (v2.1) from the API's OpenAPI schema.

The output is deterministic (folders and requests sorted, no generated ids) so
the checked-in ``postman/voice-platform.postman_collection.json`` only changes
when the API does, and a test can tell when it is stale.
"""

import json
import re
from pathlib import Path
from typing import Any

from django.conf import settings

COLLECTION_PATH = Path(settings.BASE_DIR) / "postman" / "voice-platform.postman_collection.json"
SCHEMA_URL = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

# Postman test scripts that keep the collection's token variables current, so
# "Login" then any other request just works.
SAVE_TOKENS = [
    "if (pm.response.code === 200) {",
    "    const body = pm.response.json();",
    '    pm.collectionVariables.set("access_token", body.access);',
    '    pm.collectionVariables.set("refresh_token", body.refresh);',
    "}",
]
TOKEN_SETTING_PATHS = {"/api/auth/login", "/api/auth/refresh"}
# Request bodies that should carry the saved refresh token instead of a placeholder.
REFRESH_BODY_PATHS = {"/api/auth/refresh", "/api/auth/logout"}
# Optional body fields a request should show anyway, filled from collection
# variables: the login's two-factor code, which an account without two-factor
# authentication leaves empty (the API ignores an empty code).
BODY_VARIABLES = {"/api/auth/login": {"code": "{{mfa_code}}"}}


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(schema["allOf"][0], components)
    return schema


def example(schema: dict[str, Any], components: dict[str, Any], name: str = "value") -> Any:
    """A readable example value for ``schema``: its default, else a typed placeholder."""
    schema = _resolve(schema, components)
    if "default" in schema:
        return schema["default"]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return example(options[0], components, name) if options else None
    kind = schema.get("type")
    if kind == "object":
        # Required fields and those with a default; a body of optional fields only
        # (PATCH) shows its first field rather than placeholders for everything.
        properties = schema.get("properties", {})
        shown = [
            prop
            for prop, sub in properties.items()
            if prop in schema.get("required", ()) or "default" in _resolve(sub, components)
        ] or list(properties)[:1]
        return {prop: example(properties[prop], components, prop) for prop in shown}
    if kind == "array":
        return [example(schema.get("items", {}), components, name)]
    if "enum" in schema:
        return schema["enum"][0]
    return {"integer": 1, "number": 0.5, "boolean": True}.get(kind or "", f"<{name}>")


def _url(path: str, parameters: list[dict[str, Any]], components: dict[str, Any]) -> dict:
    postman_path = re.sub(r"{(\w+)}", r":\1", path)
    query = [
        {
            "key": p["name"],
            "value": "" if p["schema"].get("default") is None else str(p["schema"]["default"]),
            "disabled": not p.get("required", False),
        }
        for p in parameters
        if p["in"] == "query"
    ]
    url: dict[str, Any] = {
        "raw": "{{baseUrl}}" + postman_path,
        "host": ["{{baseUrl}}"],
        "path": [part for part in postman_path.split("/") if part],
    }
    if query:
        url["query"] = query
    variables = [
        {"key": p["name"], "value": str(example(p["schema"], components, p["name"]))}
        for p in parameters
        if p["in"] == "path"
    ]
    if variables:
        url["variable"] = variables
    return url


def _request(path: str, method: str, operation: dict, components: dict) -> dict:
    request: dict[str, Any] = {
        "method": method.upper(),
        "header": [],
        "url": _url(path, operation.get("parameters", []), components),
    }
    if operation.get("description"):
        request["description"] = operation["description"]
    if not operation.get("security"):
        request["auth"] = {"type": "noauth"}
    body_schema = (
        operation.get("requestBody", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema")
    )
    if body_schema:
        body = example(body_schema, components)
        if path in REFRESH_BODY_PATHS:
            body = {"refresh": "{{refresh_token}}"}
        body.update(BODY_VARIABLES.get(path, {}))
        request["header"].append({"key": "Content-Type", "value": "application/json"})
        request["body"] = {
            "mode": "raw",
            "raw": json.dumps(body, indent=2),
            "options": {"raw": {"language": "json"}},
        }
    item: dict[str, Any] = {"name": operation.get("summary", f"{method.upper()} {path}")}
    item["request"] = request
    if path in TOKEN_SETTING_PATHS:
        item["event"] = [
            {"listen": "test", "script": {"type": "text/javascript", "exec": SAVE_TOKENS}}
        ]
    return item


def build_collection(openapi: dict[str, Any]) -> dict[str, Any]:
    """The Postman collection for an OpenAPI document, one folder per tag."""
    components = openapi.get("components", {}).get("schemas", {})
    folders: dict[str, list[tuple[str, int, dict]]] = {}
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            tag = (operation.get("tags") or ["api"])[0]
            order = (path, HTTP_METHODS.index(method))
            folders.setdefault(tag, []).append(
                (*order, _request(path, method, operation, components))
            )
    return {
        "info": {
            "name": openapi["info"]["title"],
            "description": openapi["info"].get("description", ""),
            "schema": SCHEMA_URL,
        },
        "auth": {
            "type": "bearer",
            "bearer": [{"key": "token", "value": "{{access_token}}", "type": "string"}],
        },
        "variable": [
            {"key": "baseUrl", "value": "http://127.0.0.1:8000"},
            {"key": "access_token", "value": ""},
            {"key": "refresh_token", "value": ""},
            {"key": "mfa_code", "value": ""},
        ],
        "item": [
            {"name": tag, "item": [item for *_, item in sorted(entries, key=lambda e: e[:2])]}
            for tag, entries in sorted(folders.items())
        ],
    }


def render() -> str:
    """The collection of the project's API as the exact text that is checked in."""
    from voiceproj.api import api

    collection = build_collection(api.get_openapi_schema(path_prefix="/api/"))
    return json.dumps(collection, indent=2, ensure_ascii=False) + "\n"
