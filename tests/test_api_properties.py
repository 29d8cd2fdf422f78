"""Property-based: schemathesis generates requests for every operation in the
OpenAPI document and sends them to a live server. No input may cause a 5xx,
and every response must match what the document says."""

from __future__ import annotations

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from api.app import create_app
from engine.settings import Settings


def _document() -> dict:
    # Building the app opens no connection, so the document is available at
    # collection time; the requests themselves go to the live server.
    app = create_app(Settings(data_dir=tempfile.mkdtemp(prefix="headrace-openapi-")))
    return app.extensions["QUART_SCHEMA"].openapi_provider.schema()


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_documented_responses(case, live):
    # Rules across fields (a tool message needs tool_call_id, a chain step must
    # name an existing model) are not expressible in JSON Schema, so a
    # schema-valid body may rightly get a 400. API keys arrive with the
    # governance issue (#4); until then the auth check would only report that.
    case.call_and_validate(
        base_url=live.url, excluded_checks=[positive_data_acceptance, ignored_auth]
    )
