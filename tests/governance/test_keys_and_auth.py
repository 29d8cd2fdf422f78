"""API keys and authentication: every status and permission path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.gateway.conftest import create, model_spec
from tests.support.live import TEST_ADMIN_KEY

HELLO = [{"role": "user", "content": "hi"}]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def new_key(client, **body) -> dict:
    response = await client.post("/admin/api-keys", json={"name": "test key", **body})
    data = await response.get_json()
    assert response.status_code == 201, data
    return data


async def test_missing_and_unknown_keys_are_401(anonymous):
    for headers in ({}, bearer("pk_live_not-a-real-key"), {"X-API-Key": "nope"},
                    {"Authorization": "Basic abc"}):
        response = await anonymous.get("/v1/models", headers=headers)
        error = (await response.get_json())["error"]
        assert response.status_code == 401, headers
        assert error["type"] == "authentication_error"
    missing = await anonymous.get("/admin/models")
    assert (await missing.get_json())["error"]["code"] == "missing_api_key"


async def test_public_routes_need_no_key(anonymous):
    for path in ("/health", "/live", "/ready", "/metrics", "/openapi.json"):
        assert (await anonymous.get(path)).status_code == 200, path


async def test_key_lifecycle_and_the_secret_shown_once(client, anonymous, app):
    created = await new_key(client, environment="test")
    secret = created["secret"]
    assert secret.startswith("pk_test_") and len(secret) >= 8 + 43
    assert created["prefix"] == secret[:12] and created["status"] == "active"
    assert "key_hash" not in created

    fetched = await (await client.get(f"/admin/api-keys/{created['id']}")).get_json()
    assert "secret" not in fetched and "key_hash" not in fetched
    listing = await (await client.get("/admin/api-keys")).get_json()
    assert secret not in str(listing)

    ok = await anonymous.get("/v1/models", headers={"X-API-Key": secret})
    assert ok.status_code == 200

    for action, status in (("suspend", "suspended"), ("activate", "active"),
                           ("revoke", "revoked")):
        response = await client.post(f"/admin/api-keys/{created['id']}/{action}")
        assert (await response.get_json())["status"] == status
        result = await anonymous.get("/v1/models", headers=bearer(secret))
        if status == "active":
            assert result.status_code == 200
        else:
            error = (await result.get_json())["error"]
            assert result.status_code == 401 and status in error["message"]
            assert error["code"] == f"api_key_{status}"
    again = await client.post(f"/admin/api-keys/{created['id']}/activate")
    assert again.status_code == 409

    deleted = await client.delete(f"/admin/api-keys/{created['id']}")
    assert (await deleted.get_json())["deleted"] is True
    assert (await client.get(f"/admin/api-keys/{created['id']}")).status_code == 404
    assert (await client.post(f"/admin/api-keys/{created['id']}/suspend")).status_code == 404


async def test_only_a_hash_is_stored(client, app, settings):
    created = await new_key(client)
    db = app.app.extensions["headrace"].db
    async with db.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT * FROM api_keys"))).all()
    assert rows and created["secret"] not in str(rows)
    assert TEST_ADMIN_KEY not in str(rows)
    await db.engine.dispose()
    raw = (settings.data_dir / "headrace.db").read_bytes()
    wal = settings.data_dir / "headrace.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert created["secret"].encode() not in raw and TEST_ADMIN_KEY.encode() not in raw


async def test_expired_key_is_refused_saying_so(client, anonymous):
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    created = await new_key(client, expires_at=soon)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    updated = await client.patch(f"/admin/api-keys/{created['id']}",
                                 json={"expires_at": past})
    assert (await updated.get_json())["status"] == "expired"
    response = await anonymous.get("/v1/models", headers=bearer(created["secret"]))
    error = (await response.get_json())["error"]
    assert response.status_code == 401 and "expired" in error["message"]


async def test_non_admin_key_cannot_use_admin(client, anonymous):
    created = await new_key(client)
    response = await anonymous.get("/admin/models", headers=bearer(created["secret"]))
    error = (await response.get_json())["error"]
    assert response.status_code == 403 and error["type"] == "permission_error"
    admin = await new_key(client, admin=True)
    assert (await anonymous.get("/admin/models",
                                headers=bearer(admin["secret"]))).status_code == 200


async def test_resource_permissions(client, anonymous, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    await create(client, "/admin/models", model_spec("m2", "openai", mock.url,
                                                     aliases=["two"]))
    await create(client, "/admin/chains", {"id": "c1", "steps": [{"model": "m2"}]})
    await create(client, "/admin/prompts", {"id": "p1", "content": "Be ${var:x:nice}"})
    key = await new_key(client, permissions={"models": ["m1"], "chains": "none",
                                             "prompts": []})
    headers = bearer(key["secret"])

    def chat(model, messages=HELLO):
        return anonymous.post("/v1/chat/completions", headers=headers,
                              json={"model": model, "messages": messages})

    assert (await chat("m1")).status_code == 200
    for model in ("m2", "two", "c1"):
        response = await chat(model)
        error = (await response.get_json())["error"]
        assert response.status_code == 403, model
        assert error["type"] == "permission_error" and error["param"] == "model"
    prompt = await chat("m1", [{"role": "system", "prompt_id": "p1"},
                               {"role": "user", "content": "x"}])
    assert prompt.status_code == 403
    assert (await prompt.get_json())["error"]["param"] == "messages[0].prompt_id"
    listing = await (await anonymous.get("/v1/models", headers=headers)).get_json()
    assert [m["id"] for m in listing["data"]] == ["m1"]
    assert (await anonymous.get("/v1/models/two", headers=headers)).status_code == 404


async def test_key_update_is_a_merge_patch(client):
    key = await new_key(client, rate_limits={"requests_per_minute": 10})
    response = await client.put(f"/admin/api-keys/{key['id']}",
                                json={"permissions": {"models": ["a", "b"]}})
    body = await response.get_json()
    assert body["permissions"]["models"] == ["a", "b"]
    assert body["permissions"]["chains"] == "all"
    assert body["rate_limits"]["requests_per_minute"] == 10
    bad = await client.put(f"/admin/api-keys/{key['id']}", json={"admin": "perhaps"})
    assert bad.status_code == 400 and (await bad.get_json())["error"]["param"] == "admin"
    unknown = await client.put(f"/admin/api-keys/{key['id']}", json={"secret": "x"})
    assert unknown.status_code == 400
    team = await client.post("/admin/api-keys", json={"name": "x", "team_id": "ghost"})
    assert team.status_code == 400 and (await team.get_json())["error"]["param"] == "team_id"


async def test_bootstrap_key_is_stored_hashed_and_replaced(tmp_path):
    from api.app import create_app
    from engine.settings import Settings

    first = Settings(data_dir=tmp_path, admin_api_key="pk_test_first_bootstrap_key_000000")
    app = create_app(first)
    async with app.test_app() as running:
        client = running.test_client()
        assert (await client.get("/admin/api-keys", headers=bearer(
            "pk_test_first_bootstrap_key_000000"))).status_code == 200
    second = Settings(data_dir=tmp_path, admin_api_key="pk_test_second_bootstrap_key_00000")
    app = create_app(second)
    async with app.test_app() as running:
        client = running.test_client()
        old = await client.get("/admin/api-keys", headers=bearer(
            "pk_test_first_bootstrap_key_000000"))
        assert old.status_code == 401
        new = await client.get("/admin/api-keys", headers=bearer(
            "pk_test_second_bootstrap_key_00000"))
        body = await new.get_json()
        assert [k["id"] for k in body["data"]] == ["key-bootstrap-admin"]


@pytest.mark.parametrize("path", ["/admin/api-keys/nope", "/admin/teams/nope"])
async def test_unknown_ids_are_404(client, path):
    response = await client.get(path)
    assert response.status_code == 404
    assert (await response.get_json())["error"]["type"] == "not_found_error"
