"""Every `hurl/*.hurl` suite passes against a live server through the runner, and
the runner fails a suite whose assertion is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hurl import run_file, run_text
from tests.support.live import TEST_ADMIN_KEY, live_server
from tests.support.mock_upstream import MockUpstream

SUITES = sorted((Path(__file__).parent.parent / "hurl").glob("*.hurl"))


@pytest.fixture(scope="module")
def variables(tmp_path_factory):
    mock = MockUpstream.start_in_thread()
    try:
        with live_server(tmp_path_factory.mktemp("hurl")) as server:
            yield {"base_url": server.url, "mock_url": mock.url, "admin_key": TEST_ADMIN_KEY}
    finally:
        mock.stop_in_thread()


def test_there_are_suites():
    assert {p.name for p in SUITES} >= {"health.hurl", "errors.hurl", "chat.hurl",
                                        "admin_models.hurl", "admin_chains.hurl",
                                        "admin_prompts.hurl"}


@pytest.mark.parametrize("suite", SUITES, ids=[p.stem for p in SUITES])
def test_suite(suite, variables):
    result = run_file(suite, variables)
    result.raise_for_failures()
    assert result.entries and all(e.status for e in result.entries)


def test_a_broken_assertion_fails_the_suite(variables):
    text = (SUITES[0].parent / "health.hurl").read_text()
    broken = text.replace('jsonpath "$.status" == "healthy"', 'jsonpath "$.status" == "sick"', 1)
    assert broken != text
    result = run_text(broken, variables, filename="health.hurl")
    assert not result.passed
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "\"sick\"" in text)
    assert any(f"health.hurl:{line}:" in failure and "healthy" in failure
               for failure in result.failures), result.failures
