"""The shipped answer-with-context workflow (seed 004's RAG example) runs end to end:
search -> empty check -> CRAG scoring -> answer, with the gateway on the mock."""

from __future__ import annotations

from engine.demo import seed
from tests.gateway.conftest import mock, upstream_keys  # noqa: F401
from tests.support.mock_upstream.fixtures import mock_upstream  # noqa: F401


async def test_answer_with_context(app, client, mock):  # noqa: F811
    await seed(app.app.extensions["headrace"].registry)
    # Point the chain's first model at the mock instead of the real vendor.
    moved = await client.patch("/admin/models/gpt-4o-mini", json={
        "base_url": mock.url + "/v1", "credentials": "env:HEADRACE_TEST_KEY"})
    assert moved.status_code == 200, await moved.get_json()

    empty = await client.post("/v1/workflows/answer-with-context/execute",
                              json={"question": "What is the refund policy?"})
    body = await empty.get_json()
    assert body["success"] is True, body
    assert "could not find" in body["output"]["answer"]  # ended early: nothing to search
    assert mock.requests() == []

    for text in ("Refunds are paid within 14 days of a return.",
                 "Our office dog is called Biscuit."):
        added = await client.post("/admin/knowledge-bases/demo-handbook/documents",
                                  json={"text": text})
        assert added.status_code == 201, await added.get_json()
    ran = await client.post("/v1/workflows/answer-with-context/execute",
                            json={"question": "How long do refunds take?"})
    body = await ran.get_json()
    assert body["success"] is True, body
    assert [s["name"] for s in body["steps"]] == ["search", "check", "grade", "answer"]
    assert "How long do refunds take?" in body["output"]["answer"]  # the mock echoes
    sources = body["output"]["sources"]
    assert [s["content"] for s in sources][:1] == [
        "Refunds are paid within 14 days of a return."]
    system = mock.requests()[0]["json"]["messages"][0]["content"]
    assert "14 days" in system and "Biscuit" not in system  # only relevant context
