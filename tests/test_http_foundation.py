"""The HTTP basics every route relies on: probes, the error format, request ids,
traces, metrics and the OpenAPI document."""

from __future__ import annotations

import logging
import re

import pytest
from pydantic import BaseModel, Field
from quart import Blueprint, Quart

import engine
from api.app import create_app
from api.validation import json_body
from engine import errors
from engine.settings import Settings


class Echo(BaseModel):
    name: str = Field(min_length=1)
    count: int = Field(ge=0)
    tags: list[str] = []


def _probe_routes() -> Blueprint:
    """Routes that exist only in these tests, to drive the shared machinery."""
    bp = Blueprint("probe", __name__)

    @bp.post("/_test/echo")
    @json_body(Echo)
    async def echo(body: Echo) -> dict:
        return body.model_dump()

    @bp.get("/_test/raise/<name>")
    async def raise_error(name: str) -> dict:
        if name == "boom":
            raise RuntimeError("secret internals: pk_live_abcdefghijklmnopqrstuvwxyz")
        raise getattr(errors, name)(f"raised {name}")

    return bp


@pytest.fixture
async def probe_app(settings: Settings):
    settings.max_body_bytes = 1024
    application = create_app(settings)
    application.register_blueprint(_probe_routes())
    async with application.test_app() as running:
        yield running


def assert_openai_error(body: dict, kind: str) -> dict:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == kind
    assert body["error"]["message"]
    return body["error"]


async def test_health_reports_version(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "healthy", "version": engine.__version__}


async def test_live(client):
    response = await client.get("/live")
    assert (response.status_code, await response.get_json()) == (200, {"status": "alive"})


async def test_ready_checks_database_and_reports_redis_disabled(client):
    response = await client.get("/ready")
    body = await response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ready"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "disabled"


async def test_ready_with_redis(settings, redis_url):
    settings.redis_url = redis_url
    application = create_app(settings)
    async with application.test_app() as running:
        body = await (await running.test_client().get("/ready")).get_json()
    assert body["checks"]["redis"]["status"] == "ok"


async def test_ready_stays_ready_but_degraded_when_redis_is_down(settings):
    """Limits and breakers carry on in process, so the replica keeps its traffic."""
    from tests.support.services import free_port

    settings.redis_url = f"redis://127.0.0.1:{free_port()}/0"
    application = create_app(settings)
    async with application.test_app() as running:
        response = await running.test_client().get("/ready")
        body = await response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ready"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "degraded"
    assert "Redis unreachable" in body["checks"]["redis"]["detail"]


async def test_ready_is_503_with_reason_when_the_database_fails(settings, tmp_path):
    from engine.store import Database

    application = create_app(settings)
    async with application.test_app() as running:
        state = running.app.extensions["headrace"]
        healthy_db = state.db
        state.db = Database(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
        response = await running.test_client().get("/ready")
        body = await response.get_json()
        await state.db.close()
        state.db = healthy_db
    assert response.status_code == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["status"] == "failed"
    assert body["reason"].startswith("database: ")


async def test_unknown_route_is_openai_404(client):
    response = await client.get("/v1/does-not-exist")
    error = assert_openai_error(await response.get_json(), "not_found_error")
    assert response.status_code == 404
    assert "/v1/does-not-exist" in error["message"]
    assert response.content_type == "application/json"


async def test_wrong_method_is_405_with_allow_header(client):
    response = await client.delete("/health")
    assert response.status_code == 405
    assert_openai_error(await response.get_json(), "invalid_request_error")
    assert "GET" in response.headers["Allow"]


async def test_malformed_json_is_400(probe_app):
    response = await probe_app.test_client().post(
        "/_test/echo", data=b'{"name": "x", "count":', headers={"Content-Type": "application/json"}
    )
    error = assert_openai_error(await response.get_json(), "invalid_request_error")
    assert response.status_code == 400
    assert error["code"] == "invalid_json"
    assert "not valid JSON" in error["message"]


@pytest.mark.parametrize("payload", [b"[]", b'"text"', b"42"])
async def test_json_that_is_not_an_object_is_400(probe_app, payload):
    response = await probe_app.test_client().post(
        "/_test/echo", data=payload, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert_openai_error(await response.get_json(), "invalid_request_error")


async def test_empty_body_is_400(probe_app):
    response = await probe_app.test_client().post(
        "/_test/echo", data=b"", headers={"Content-Type": "application/json"}
    )
    error = assert_openai_error(await response.get_json(), "invalid_request_error")
    assert "empty" in error["message"]


async def test_wrong_content_type_is_415(probe_app):
    response = await probe_app.test_client().post(
        "/_test/echo", data=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    error = assert_openai_error(await response.get_json(), "invalid_request_error")
    assert response.status_code == 415
    assert "application/json" in error["message"]


async def test_validation_error_names_the_field(probe_app):
    response = await probe_app.test_client().post(
        "/_test/echo", json={"name": "x", "count": -1, "tags": ["a", 3]}
    )
    error = assert_openai_error(await response.get_json(), "invalid_request_error")
    assert response.status_code == 400
    assert error["param"] == "count"
    assert "count:" in error["message"] and "tags[1]:" in error["message"]


async def test_valid_body_reaches_the_view(probe_app):
    response = await probe_app.test_client().post("/_test/echo", json={"name": "x", "count": 2})
    assert await response.get_json() == {"name": "x", "count": 2, "tags": []}


async def test_oversize_body_is_413_before_the_view_runs(probe_app):
    response = await probe_app.test_client().post(
        "/_test/echo", json={"name": "x" * 2000, "count": 1}
    )
    error = assert_openai_error(await response.get_json(), "invalid_request_error")
    assert response.status_code == 413
    assert "1024" in error["message"]


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [
        ("InvalidRequest", 400, "invalid_request_error"),
        ("AuthenticationFailed", 401, "authentication_error"),
        ("PermissionDenied", 403, "permission_error"),
        ("NotFound", 404, "not_found_error"),
        ("Conflict", 409, "invalid_request_error"),
        ("RateLimited", 429, "rate_limit_error"),
        ("BudgetExceeded", 429, "insufficient_quota"),
        ("UpstreamError", 502, "api_error"),
        ("ServiceUnavailable", 503, "api_error"),
        ("UpstreamTimeout", 504, "api_error"),
    ],
)
async def test_engine_errors_map_to_status_and_type(probe_app, name, status, kind):
    response = await probe_app.test_client().get(f"/_test/raise/{name}")
    assert response.status_code == status
    error = assert_openai_error(await response.get_json(), kind)
    assert error["message"] == f"raised {name}"


async def test_unexpected_exception_is_500_without_internals(probe_app, caplog):
    with caplog.at_level(logging.ERROR):
        response = await probe_app.test_client().get("/_test/raise/boom")
    assert response.status_code == 500
    error = assert_openai_error(await response.get_json(), "api_error")
    text = (await response.get_data()).decode()
    assert "secret internals" not in text and "Traceback" not in text
    assert error["code"] == "internal_error"
    # The traceback is logged, with the key in it redacted.
    logged = "\n".join(str(r.msg) + str(r.exc_info) for r in caplog.records)
    assert "unhandled error" in logged


async def test_request_id_is_generated_and_returned(client):
    response = await client.get("/health")
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["X-Request-ID"])


async def test_incoming_request_id_is_honoured(client):
    response = await client.get("/health", headers={"X-Request-ID": "abc-123.x:y"})
    assert response.headers["X-Request-ID"] == "abc-123.x:y"


async def test_unsafe_request_id_is_replaced(client):
    response = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["X-Request-ID"] != "bad id\twith spaces"
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["X-Request-ID"])


async def test_request_id_is_returned_on_errors_too(client):
    response = await client.get("/missing", headers={"X-Request-ID": "req-404"})
    assert response.headers["X-Request-ID"] == "req-404"


async def test_traceparent_continues_the_callers_trace(client):
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = await client.get("/health", headers={"traceparent": incoming})
    version, trace_id, span_id, flags = response.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span_id != "00f067aa0ba902b7" and len(span_id) == 16


@pytest.mark.parametrize(
    "bad",
    ["garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
     "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
)
async def test_invalid_traceparent_starts_a_new_trace(client, bad):
    response = await client.get("/health", headers={"traceparent": bad})
    trace_id = response.headers["traceparent"].split("-")[1]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id) and trace_id not in bad


async def test_access_log_carries_request_and_trace_ids(settings, caplog):
    settings.access_log = True
    application = create_app(settings)
    async with application.test_app() as running:
        with caplog.at_level(logging.INFO, logger="headrace.access"):
            await running.test_client().get(
                "/health",
                headers={
                    "X-Request-ID": "log-me",
                    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                },
            )
    events = [r.msg for r in caplog.records if r.name == "headrace.access"]
    assert events, "no access log line"
    event = events[-1]
    assert event["request_id"] == "log-me"
    assert event["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert event["route"] == "/health" and event["status"] == 200


async def test_metrics_count_requests_by_route_and_status(client):
    await client.get("/health")
    await client.get("/no/such/route")
    text = (await (await client.get("/metrics")).get_data()).decode()
    assert re.search(
        r'headrace_http_requests_total\{method="GET",route="/health",status="200"\} \d', text
    )
    assert 'route="unmatched",status="404"' in text
    assert "headrace_http_request_duration_seconds_bucket" in text


async def test_openapi_document_is_3_1_with_error_responses(client):
    doc = await (await client.get("/openapi.json")).get_json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["version"] == engine.__version__
    health = doc["paths"]["/health"]["get"]
    assert health["responses"]["200"]["content"]["application/json"]["schema"]
    assert health["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
    assert "ErrorResponse" in doc["components"]["schemas"]
    assert "/docs" not in doc["paths"] and "/ui/" not in doc["paths"]


async def test_docs_page_uses_only_packaged_assets(client):
    page = (await (await client.get("/docs")).get_data()).decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets, "the docs page references no assets"
    for asset in assets:
        assert asset.startswith("/"), f"external asset {asset}"
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(await response.get_data()) > 0


async def test_root_redirects_to_the_console(client):
    response = await client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/ui/")
    page = await client.get("/ui/")
    assert page.status_code == 200


async def test_api_only_app_has_no_console(settings):
    application: Quart = create_app(settings, serve_ui=False)
    async with application.test_app() as running:
        assert (await running.test_client().get("/ui/")).status_code == 404
