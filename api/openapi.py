"""The OpenAPI 3.1 document (`/openapi.json`) and interactive docs (`/docs`).

quart-schema builds the document from the models that `api.validation`
registers on each view. This provider adds what every operation shares: the
OpenAI-shaped error responses and the two ways to send an API key. The docs
page loads Swagger UI from files in this package, never from a CDN.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import quart_schema.openapi
from quart import Blueprint, Quart, Response
from quart_schema import QuartSchema, hide
from quart_schema.openapi import OpenAPIProvider
from werkzeug.routing import Rule

import engine
from api.errors import ErrorResponse
from api.validation import TEXT_RESPONSE_ATTRIBUTE

# quart-schema's pattern for `<converter:name>` spans two parameters in
# `/<id>/versions/<int:version>` (its `[^:]*` crosses `>`), naming the path
# `/{version}`; this one stops at the parameter's end.
quart_schema.openapi.PATH_RE = re.compile(r"<(?:[^:>]*:)?([^>]+)>")

_AUTH_ERRORS = {401, 403, 429}
_ERROR_DESCRIPTIONS = {
    400: "Invalid request (OpenAI error format; `param` names the field)",
    401: "Missing, unknown, suspended, revoked or expired API key",
    403: "The key lacks permission for this resource",
    404: "No such resource",
    429: "Rate limit or budget exceeded",
    500: "Internal error",
}
_BODY_ERRORS = {
    409: "Conflicts with stored state (an id or alias in use, a concurrent change)",
    413: "Request body too large",
    415: "Content-Type is not application/json",
}
_UPSTREAM_ERRORS = {
    502: "The upstream provider failed (after retries and fallbacks)",
    503: "No deployment available (open circuits, saturated, upstream outage)",
    504: "The upstream provider timed out",
}
_UPSTREAM_PATHS = ("/v1/chat/", "/v1/embeddings", "/v1/responses", "/v1/messages")

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Headrace API</title>
  <link rel="icon" type="image/png" href="/static/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/static/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/static/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null,
      deepLinking: true, persistAuthorization: false
    });
  </script>
</body>
</html>
"""


class HeadraceOpenAPI(OpenAPIProvider):
    def schema(self) -> dict[str, Any]:
        schema = super().schema()
        error_schema = ErrorResponse.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        components = schema["components"]["schemas"]
        for name, definition in error_schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components["ErrorResponse"] = error_schema
        return schema

    def generate_rules(self) -> Iterable[Rule]:
        # Static file routes (docs assets, console) are not part of the API.
        for rule in super().generate_rules():
            if rule.endpoint.rsplit(".", 1)[-1] != "static":
                yield rule

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        view = self._app.view_functions[rule.endpoint]
        text_responses = getattr(view, TEXT_RESPONSE_ATTRIBUTE, {})
        ref = {"$ref": "#/components/schemas/ErrorResponse"}
        for path, operations in paths.items():
            for method, operation in operations.items():
                responses = operation["responses"] = dict(operation["responses"])
                for status, (media_type, description) in text_responses.items():
                    responses[status] = {
                        "description": description,
                        "content": {media_type: {"schema": {"type": "string"}}},
                    }
                is_public = operation.get("security") == []
                errors = dict(_ERROR_DESCRIPTIONS)
                if method in ("post", "put", "patch", "delete"):
                    errors.update(_BODY_ERRORS)
                if path.startswith(_UPSTREAM_PATHS):
                    errors.update(_UPSTREAM_ERRORS)
                for status, description in errors.items():
                    if is_public and status in _AUTH_ERRORS:
                        continue
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {"application/json": {"schema": ref}},
                        },
                    )
        return paths, components


def init_openapi(app: Quart) -> None:
    QuartSchema(
        app,
        info={
            "title": "Headrace",
            "version": engine.__version__,
            "description": "Workflow and RAG orchestration engine with an embedded, "
            "OpenAI-compatible LLM gateway.",
        },
        openapi_path="/openapi.json",
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        openapi_provider_class=HeadraceOpenAPI,
        security_schemes={
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in_": "header", "name": "X-API-Key"},
        },
        security=[{"bearer": []}, {"apiKey": []}],
    )
    docs = Blueprint("docs", __name__, static_folder="static", static_url_path="/static")

    @docs.get("/docs")
    @hide
    async def swagger_ui() -> Response:
        return Response(_DOCS_PAGE, content_type="text/html; charset=utf-8")

    app.register_blueprint(docs)
