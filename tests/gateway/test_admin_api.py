"""`/admin/models`, `/admin/chains`, `/admin/prompts` and the `/v1` listing routes."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys

import pytest

from tests.gateway.conftest import create, model_spec
from tests.support.live import isolated_env


async def test_model_crud_and_versions(client, mock):
    created = await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    assert created["object"] == "model" and created["version"] == 1
    assert created["defaults"]["temperature"] is None  # defaults are stored explicitly

    # PUT is a merge patch: only the given fields change.
    updated = await client.put("/admin/models/m1", json={"defaults": {"temperature": 0.2},
                                                         "description": "cheap"})
    body = await updated.get_json()
    assert updated.status_code == 200, body
    assert body["version"] == 2 and body["defaults"]["temperature"] == 0.2
    assert body["model"] == "upstream-m1"

    # null resets a field to its default.
    reset = await client.patch("/admin/models/m1", json={"description": None})
    assert (await reset.get_json())["description"] is None

    versions = (await (await client.get("/admin/models/m1/versions")).get_json())["data"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[0]["spec"]["description"] is None
    assert versions[1]["spec"]["description"] == "cheap"
    one = await client.get("/admin/models/m1/versions/2")
    assert (await one.get_json())["spec"]["defaults"]["temperature"] == 0.2
    assert (await client.get("/admin/models/m1/versions/9")).status_code == 404

    listing = await (await client.get("/admin/models?limit=1")).get_json()
    assert listing["total"] == 1 and listing["data"][0]["id"] == "m1"
    assert listing["has_more"] is False

    deleted = await client.delete("/admin/models/m1")
    assert await deleted.get_json() == {"id": "m1", "object": "model", "deleted": True}
    assert (await client.get("/admin/models/m1")).status_code == 404
    assert (await client.delete("/admin/models/m1")).status_code == 404


@pytest.mark.parametrize(("body", "param"), [
    ({"id": "bad id!", "provider": "openai", "model": "x"}, "id"),
    ({"id": "x" * 51, "provider": "openai", "model": "x"}, "id"),
    ({"id": "m", "provider": "nope", "model": "x"}, "provider"),
    ({"id": "m", "provider": "openai"}, "model"),
    ({"id": "m", "provider": "openai", "model": "x", "temprature": 1}, "temprature"),
    ({"id": "m", "provider": "openai", "model": "x", "defaults": {"temperature": 5}},
     "defaults.temperature"),
    ({"id": "m", "provider": "openai", "model": "x", "credentials": "nope:x"}, "credentials"),
])
async def test_model_validation_names_the_field(client, body, param):
    response = await client.post("/admin/models", json=body)
    error = (await response.get_json())["error"]
    assert response.status_code == 400, error
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert (await (await client.get("/admin/models")).get_json())["total"] == 0


async def test_azure_needs_api_version(client):
    response = await client.post("/admin/models", json={
        "id": "az", "provider": "azure_openai", "model": "dep", "base_url": "https://x.test"})
    assert response.status_code == 400
    assert "api_version" in (await response.get_json())["error"]["message"]


async def test_bad_update_changes_nothing(client, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    for patch in ({"max_retries": -1}, {"id": "other"}, {"unknown": 1}):
        response = await client.put("/admin/models/m1", json=patch)
        assert response.status_code == 400, patch
    stored = await (await client.get("/admin/models/m1")).get_json()
    assert stored["version"] == 1 and stored["max_retries"] == 2


async def test_ids_and_aliases_are_unique_across_models_and_chains(client, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url,
                                                     aliases=["gpt-4o"]))
    again = await client.post("/admin/models", json=model_spec("m1", "openai", mock.url))
    assert again.status_code == 409
    clash = await client.post("/admin/models", json=model_spec("m2", "openai", mock.url,
                                                                aliases=["gpt-4o"]))
    assert clash.status_code == 409
    assert "gpt-4o" in (await clash.get_json())["error"]["message"]
    chain_clash = await client.post("/admin/chains", json={"id": "c1", "aliases": ["gpt-4o"],
                                                           "steps": [{"model": "m1"}]})
    assert chain_clash.status_code == 409
    same_id = await client.post("/admin/chains", json={"id": "m1", "steps": [{"model": "m1"}]})
    assert same_id.status_code == 409


async def test_chain_steps_must_name_models(client, mock):
    response = await client.post("/admin/chains", json={"id": "c1", "steps": [{"model": "x"}]})
    error = (await response.get_json())["error"]
    assert response.status_code == 400 and error["param"] == "steps[0].model"
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url, aliases=["a1"]))
    await create(client, "/admin/chains", {"id": "c1", "steps": [{"model": "a1"}]})
    nested = await client.post("/admin/chains", json={"id": "c2", "steps": [{"model": "c1"}]})
    assert nested.status_code == 400
    empty = await client.post("/admin/chains", json={"id": "c3", "steps": []})
    assert (await empty.get_json())["error"]["param"] == "steps"


async def test_a_model_in_use_cannot_disappear(client, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url, aliases=["a1"]))
    await create(client, "/admin/chains", {"id": "c1", "steps": [{"model": "a1"}]})
    blocked = await client.delete("/admin/models/m1")
    assert blocked.status_code == 409
    assert "c1" in (await blocked.get_json())["error"]["message"]
    dropped_alias = await client.put("/admin/models/m1", json={"aliases": []})
    assert dropped_alias.status_code == 409
    assert (await client.delete("/admin/chains/c1")).status_code == 200
    assert (await client.delete("/admin/models/m1")).status_code == 200


async def test_v1_models_lists_ids_aliases_and_chains(client, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url,
                                                     aliases=["openai/gpt-4o"]))
    await create(client, "/admin/models", model_spec("off", "openai", mock.url, enabled=False))
    await create(client, "/admin/chains", {"id": "c1", "steps": [{"model": "m1"}]})
    listing = await (await client.get("/v1/models")).get_json()
    assert sorted(m["id"] for m in listing["data"]) == ["c1", "m1", "openai/gpt-4o"]
    assert all(m["object"] == "model" and m["created"] > 0 for m in listing["data"])
    one = await client.get("/v1/models/openai/gpt-4o")
    assert (await one.get_json())["owned_by"] == "openai"
    missing = await client.get("/v1/models/nope")
    assert missing.status_code == 404
    assert (await missing.get_json())["error"]["type"] == "not_found_error"
    disabled = await client.post("/v1/chat/completions", json={
        "model": "off", "messages": [{"role": "user", "content": "hi"}]})
    assert disabled.status_code == 400


@pytest.mark.parametrize("provider", ["openai", "azure_openai", "bedrock"])
async def test_embeddings(client, mock, provider):
    spec = model_spec("e1", provider, mock.url, type="embedding")
    if provider == "bedrock":
        spec["model"] = "amazon.titan-embed-text-v2:0"
    await create(client, "/admin/models", spec)
    response = await client.post("/v1/embeddings", json={"model": "e1",
                                                          "input": ["one", "two words"]})
    body = await response.get_json()
    assert response.status_code == 200, body
    assert [d["index"] for d in body["data"]] == [0, 1]
    vector = body["data"][0]["embedding"]
    assert isinstance(vector, list) and len(vector) > 0
    encoded = await client.post("/v1/embeddings", json={
        "model": "e1", "input": "one", "encoding_format": "base64"})
    raw = base64.b64decode((await encoded.get_json())["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert decoded == pytest.approx(vector, rel=1e-6)


async def test_chat_model_cannot_embed(client, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    response = await client.post("/v1/embeddings", json={"model": "m1", "input": "x"})
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "wrong_model_type"


@pytest.mark.parametrize("path", ["/v1/audio/speech", "/v1/images/generations", "/v1/batches",
                                  "/v1/files", "/v1/moderations"])
async def test_unsupported_openai_endpoints_say_so(client, path):
    response = await client.post(path, json={})
    error = (await response.get_json())["error"]
    assert response.status_code == 400
    assert error["type"] == "invalid_request_error" and error["code"] == "unsupported_endpoint"
    assert path.split("/")[2] in error["message"]


async def test_prompt_crud_render_and_versions(client):
    await create(client, "/admin/prompts", {
        "id": "greet", "name": "Greeting", "content": "Hello ${var:name}, ${var:mood:welcome}!",
        "tags": ["demo"]})
    rendered = await client.post("/admin/prompts/greet/render",
                                 json={"variables": {"name": "Ada"}})
    body = await rendered.get_json()
    assert body["rendered"] == "Hello Ada, welcome!"
    assert body["version"] == 1 and body["variables_used"] == ["name"]

    missing = await client.post("/admin/prompts/greet/render", json={"variables": {}})
    error = (await missing.get_json())["error"]
    assert missing.status_code == 400 and "name" in error["message"]

    await client.put("/admin/prompts/greet", json={"content": "Hi ${var:name}"})
    latest = await client.post("/admin/prompts/greet/render", json={"variables": {"name": "A"}})
    assert (await latest.get_json())["rendered"] == "Hi A"
    old = await client.post("/admin/prompts/greet/render",
                            json={"variables": {"name": "A"}, "version": 1})
    assert (await old.get_json())["rendered"] == "Hello A, welcome!"
    versions = await (await client.get("/admin/prompts/greet/versions")).get_json()
    assert len(versions["data"]) == 2
    assert (await client.post("/admin/prompts/nope/render", json={})).status_code == 404


async def test_jinja2_prompts_are_sandboxed(client):
    await create(client, "/admin/prompts", {
        "id": "j", "format": "jinja2",
        "content": "{% for i in items %}{{ i | upper }} {% endfor %}"})
    rendered = await client.post("/admin/prompts/j/render",
                                 json={"variables": {"items": ["a", "b"]}})
    assert (await rendered.get_json())["rendered"] == "A B "
    await create(client, "/admin/prompts", {
        "id": "evil", "format": "jinja2", "content": "{{ ''.__class__.__mro__ }}"})
    escape = await client.post("/admin/prompts/evil/render", json={})
    assert escape.status_code == 400
    bad = await client.post("/admin/prompts", json={"id": "b", "format": "jinja2",
                                                    "content": "{% for %}"})
    assert bad.status_code == 400


def test_seed_command_loads_the_demo(tmp_path):
    env = isolated_env(HEADRACE_DATA_DIR=str(tmp_path))
    first = subprocess.run([sys.executable, "-m", "api.cli", "seed"], env=env,
                           capture_output=True, text=True, check=True)
    assert "created prompt code-reviewer" in first.stdout
    assert "created chain smart-fallback" in first.stdout
    again = subprocess.run([sys.executable, "-m", "api.cli", "seed"], env=env,
                           capture_output=True, text=True, check=True)
    assert "created" not in again.stdout and "unchanged" in again.stdout


async def test_seeded_code_reviewer_uses_var_code(app, client):
    from engine.demo import seed

    report = await seed(app.app.extensions["headrace"].registry)
    assert "prompt helpful-assistant" in report.created
    rendered = await client.post("/admin/prompts/code-reviewer/render",
                                 json={"variables": {"code": "eval(input())"}})
    body = await rendered.get_json()
    assert "eval(input())" in body["rendered"] and "Python" in body["rendered"]
    missing = await client.post("/admin/prompts/code-reviewer/render", json={})
    assert missing.status_code == 400
    assert "code" in (await missing.get_json())["error"]["message"]


async def test_another_replicas_changes_arrive_within_the_refresh(settings, mock):
    import asyncio

    from api.app import create_app
    from tests.support.live import AUTH

    settings.catalog_refresh_s = 0.2
    first, second = create_app(settings), create_app(settings)  # one database, two replicas
    async with first.test_app() as a, second.test_app() as b:
        one, two = a.test_client(), b.test_client()
        created = await one.post("/admin/models", headers=AUTH,
                                 json=model_spec("m9", "openai", mock.url))
        assert created.status_code == 201
        for _ in range(50):
            listing = await (await two.get("/v1/models", headers=AUTH)).get_json()
            if [m["id"] for m in listing["data"]] == ["m9"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the second replica never saw the new model")
        await one.delete("/admin/models/m9", headers=AUTH)
        for _ in range(50):
            listing = await (await two.get("/v1/models", headers=AUTH)).get_json()
            if not listing["data"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the second replica never saw the deletion")
