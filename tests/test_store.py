"""The versioned resource store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from engine.errors import Conflict, NotFound
from engine.store import Database, ResourceStore
from engine.store.migrate import upgrade


@pytest.fixture
async def store(database_url: str):
    db = Database(database_url)
    await upgrade(db)
    yield ResourceStore(db)
    await db.close()


async def test_create_get_and_list(store: ResourceStore):
    created = await store.create("model", "gpt-x", {"provider": "openai", "n": 1})
    assert (created.version, created.spec) == (1, {"provider": "openai", "n": 1})
    assert created.created_at.tzinfo is not None
    fetched = await store.get("model", "gpt-x")
    assert fetched.spec == created.spec and fetched.created_at == created.created_at
    await store.create("model", "a-first", {})
    await store.create("prompt", "gpt-x", {"content": "other kind, same id"})
    items, total = await store.list("model")
    assert total == 2 and [r.id for r in items] == ["a-first", "gpt-x"]


async def test_list_pages(store: ResourceStore):
    for i in range(5):
        await store.create("chain", f"c{i}", {"i": i})
    page, total = await store.list("chain", limit=2, offset=2)
    assert total == 5 and [r.id for r in page] == ["c2", "c3"]


async def test_duplicate_id_is_a_conflict_and_changes_nothing(store: ResourceStore):
    await store.create("model", "m", {"v": 1})
    with pytest.raises(Conflict):
        await store.create("model", "m", {"v": 2})
    assert (await store.get("model", "m")).spec == {"v": 1}
    assert len(await store.versions("model", "m")) == 1


async def test_update_keeps_every_version(store: ResourceStore):
    await store.create("prompt", "p", {"content": "one"})
    await store.update("prompt", "p", {"content": "two"})
    third = await store.update("prompt", "p", {"content": "three"}, changed_by="key-1")
    assert third.version == 3
    versions = await store.versions("prompt", "p")
    assert [(v.version, v.spec["content"]) for v in versions] == [
        (1, "one"), (2, "two"), (3, "three"),
    ]
    assert versions[-1].changed_by == "key-1"
    assert (await store.get_version("prompt", "p", 2)).spec == {"content": "two"}
    with pytest.raises(NotFound):
        await store.get_version("prompt", "p", 9)


async def test_stale_expected_version_is_a_conflict(store: ResourceStore):
    await store.create("model", "m", {"v": 1})
    await store.update("model", "m", {"v": 2}, expected_version=1)
    with pytest.raises(Conflict):
        await store.update("model", "m", {"v": 3}, expected_version=1)
    assert (await store.get("model", "m")).spec == {"v": 2}


async def test_concurrent_updates_each_get_their_own_version(store: ResourceStore):
    await store.create("model", "m", {"v": 0})
    results = await asyncio.gather(*(store.update("model", "m", {"v": i}) for i in range(1, 9)))
    assert sorted(r.version for r in results) == list(range(2, 10))
    assert len(await store.versions("model", "m")) == 9


async def test_missing_resources_are_not_found(store: ResourceStore):
    for call in (
        store.get("model", "nope"),
        store.update("model", "nope", {}),
        store.delete("model", "nope"),
        store.versions("model", "nope"),
    ):
        with pytest.raises(NotFound):
            await call


async def test_delete_removes_resource_and_history(store: ResourceStore):
    await store.create("workflow", "w", {"steps": []})
    await store.update("workflow", "w", {"steps": [1]})
    deleted = await store.delete("workflow", "w")
    assert deleted.version == 2
    with pytest.raises(NotFound):
        await store.get("workflow", "w")
    with pytest.raises(NotFound):
        await store.versions("workflow", "w")
    # The id can be used again, starting a fresh history.
    assert (await store.create("workflow", "w", {})).version == 1


async def test_json_specs_round_trip_nested_values(store: ResourceStore):
    spec = {"a": [1, 2.5, None, True], "b": {"c": "ü ☃", "d": []}}
    await store.create("model", "j", spec)
    assert (await store.get("model", "j")).spec == spec
