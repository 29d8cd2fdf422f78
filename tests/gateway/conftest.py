"""Fixtures for gateway tests: the app (as in the root conftest) and a mock upstream."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.mock_upstream import MockUpstream
from tests.support.mock_upstream.fixtures import mock_upstream  # noqa: F401


def model_spec(id: str, provider: str, base_url: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"id": id, "provider": provider, "model": f"upstream-{id}",
                            "base_url": base_url, "credentials": "env:HEADRACE_TEST_KEY"}
    if provider == "azure_openai":
        spec["api_version"] = "2024-06-01"
    if provider == "bedrock":
        spec.update(model="anthropic.claude-3-haiku-20240307-v1:0", region="us-east-1",
                    credentials="env:HEADRACE_TEST_AWS")
    if provider in ("openai", "openai_compatible"):
        spec["base_url"] = base_url + "/v1"
    spec.update(extra)
    return spec


@pytest.fixture(autouse=True)
def upstream_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADRACE_TEST_KEY", "sk-test-secret-value")
    monkeypatch.setenv("HEADRACE_TEST_AWS",
                       '{"aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "s3cr3t"}')


@pytest.fixture
def mock(mock_upstream: MockUpstream) -> MockUpstream:  # noqa: F811
    return mock_upstream


async def create(client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    data = await response.get_json()
    assert response.status_code == 201, data
    return data
