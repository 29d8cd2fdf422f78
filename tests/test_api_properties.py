"""Property-based: schemathesis generates requests for every operation in the
OpenAPI document and sends them to a live server. No input may cause a 5xx of
Headrace's own, and every response must match what the document says."""

from __future__ import annotations

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
)

from api.app import create_app
from engine.settings import Settings
from tests.support.live import AUTH

# Generated models point at real vendors (api.openai.com...), unreachable from
# the test machine: a gateway route then rightly answers 502/503/504 naming the
# upstream. Those are the upstream's failures, not Headrace's.
UPSTREAM_CODES = {"upstream_error", "upstream_timeout", "circuit_open",
                  "deployment_saturated", "credential_unavailable"}


def _document() -> dict:
    # Building the app opens no connection, so the document is available at
    # collection time; the requests themselves go to the live server.
    app = create_app(Settings(data_dir=tempfile.mkdtemp(prefix="headrace-openapi-")))
    return app.extensions["QUART_SCHEMA"].openapi_provider.schema()


schema = schemathesis.openapi.from_dict(_document())


def _upstream_failure(response) -> bool:
    if response.status_code not in (502, 503, 504):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return isinstance(code, str) and (code in UPSTREAM_CODES or code.startswith("upstream_"))


@schemathesis.check
def no_server_error_of_our_own(ctx, response, case):
    if response.status_code >= 500 and not _upstream_failure(response):
        raise AssertionError(f"{response.status_code} from Headrace itself: {response.text[:500]}")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_documented_responses(case, live):
    # Rules across fields (a tool message needs tool_call_id, a chain step must
    # name an existing model) are not expressible in JSON Schema, so a
    # schema-valid body may rightly get a 400. Every request carries the admin
    # key, so schemathesis's own "ignored auth" probe cannot tell bad auth apart;
    # tests/governance checks authentication on every route instead. Invalid
    # inputs are still generated and must get a documented 4xx, never a 5xx;
    # but "must be rejected" is not asserted: schemathesis's mutations of query
    # strings and headers (null vs object, header formats) have no faithful
    # encoding on the wire, and made the check fail at random.
    response = case.call_and_validate(
        base_url=live.url, headers=AUTH,
        excluded_checks=[positive_data_acceptance, ignored_auth, not_a_server_error,
                         negative_data_rejection],
        additional_checks=[no_server_error_of_our_own],
    )
    assert response.status_code < 500 or _upstream_failure(response)


class _Response:
    def __init__(self, status_code: int, body: object):
        self.status_code, self._body, self.text = status_code, body, str(body)

    def json(self) -> object:
        return self._body


def test_only_upstream_failures_are_excused():
    upstream = {"error": {"code": "upstream_error", "message": "x"}}
    assert _upstream_failure(_Response(502, upstream))
    assert _upstream_failure(_Response(503, {"error": {"code": "circuit_open"}}))
    assert not _upstream_failure(_Response(500, upstream))
    assert not _upstream_failure(_Response(502, {"error": {"code": "internal_error"}}))
    assert not _upstream_failure(_Response(502, "not json"))
