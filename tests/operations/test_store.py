"""The operations repository: transitions, lookups, scoping, paging, expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine.errors import Conflict, InvalidRequest, NotFound
from engine.operations import OperationStore, new_operation_id, operation_body
from engine.store.types import utcnow


async def test_create_and_get(store: OperationStore):
    row = await store.create("chat_completion", {"model": "m"}, key_id="k1", team_id="t1")
    assert row.id.startswith("op-") and row.status == "pending"
    got = await store.get(row.id)
    assert got.request == {"model": "m"} and got.key_id == "k1"
    body = operation_body(got)
    assert body["operation_id"] == row.id and body["status"] == "pending"
    assert isinstance(body["created_at"], int) and body["result"] is None


async def test_malformed_id_is_400_and_unknown_is_404(store: OperationStore):
    with pytest.raises(InvalidRequest):
        await store.get("nope")
    with pytest.raises(InvalidRequest):
        await store.get("op-123")
    with pytest.raises(NotFound):
        await store.get(new_operation_id())


async def test_unknown_type_is_refused(store: OperationStore):
    with pytest.raises(InvalidRequest):
        await store.create("bogus", {})


async def test_valid_transitions(store: OperationStore):
    row = await store.create("workflow", {})
    running = await store.transition(row.id, "running")
    assert running.status == "running" and running.started_at is not None
    done = await store.transition(row.id, "completed", result={"ok": True})
    assert done.status == "completed" and done.result == {"ok": True}
    assert done.finished_at is not None

    other = await store.create("workflow", {})
    assert (await store.transition(other.id, "cancelled")).status == "cancelled"
    third = await store.create("workflow", {})
    await store.transition(third.id, "running")
    failed = await store.transition(third.id, "failed", error={"message": "x"})
    assert failed.error == {"message": "x"}


@pytest.mark.parametrize(("path", "target"), [
    ((), "completed"),
    ((), "failed"),
    (("running", "completed"), "cancelled"),
    (("running", "completed"), "running"),
    (("running", "failed"), "completed"),
    (("cancelled",), "running"),
    (("running",), "running"),
])
async def test_invalid_transitions_conflict(store: OperationStore, path, target):
    row = await store.create("ingestion", {})
    for step in path:
        await store.transition(row.id, step)
    with pytest.raises(Conflict) as info:
        await store.transition(row.id, target)
    assert info.value.code == "invalid_transition"


async def test_unknown_target_and_unknown_id(store: OperationStore):
    row = await store.create("ingestion", {})
    with pytest.raises(InvalidRequest):
        await store.transition(row.id, "pending")
    with pytest.raises(NotFound):
        await store.transition(new_operation_id(), "running")


async def test_concurrent_transitions_only_one_wins(store: OperationStore):
    row = await store.create("ingestion", {})
    await store.transition(row.id, "running")
    results = await asyncio.gather(
        store.transition(row.id, "completed", result={}),
        store.transition(row.id, "cancelled"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1
    final = await store.get(row.id)
    assert final.status in ("completed", "cancelled")


async def test_get_many_keeps_order_and_skips_unknown(store: OperationStore):
    a = await store.create("workflow", {}, team_id="t1")
    b = await store.create("workflow", {}, team_id="t2")
    rows = await store.get_many([b.id, new_operation_id(), a.id])
    assert [r.id for r in rows] == [b.id, a.id]
    assert [r.id for r in await store.get_many([a.id, b.id], scope_team_id="t1")] == [a.id]
    assert await store.get_many([]) == []
    with pytest.raises(InvalidRequest):
        await store.get_many([a.id, "bad"])


async def test_scoping(store: OperationStore):
    mine = await store.create("workflow", {}, key_id="k1", team_id="t1")
    teammate = await store.create("workflow", {}, key_id="k2", team_id="t1")
    other = await store.create("workflow", {}, key_id="k3", team_id="t2")
    solo = await store.create("workflow", {}, key_id="k4", team_id=None)

    team_rows, _ = await store.list(scope_team_id="t1")
    assert {r.id for r in team_rows} == {mine.id, teammate.id}
    solo_rows, _ = await store.list(scope_key_id="k4")
    assert [r.id for r in solo_rows] == [solo.id]
    admin_rows, _ = await store.list()
    assert {r.id for r in admin_rows} == {mine.id, teammate.id, other.id, solo.id}
    with pytest.raises(NotFound):
        await store.get(other.id, scope_team_id="t1")
    assert (await store.get(teammate.id, scope_team_id="t1")).id == teammate.id


async def test_list_filters_and_paging(store: OperationStore):
    ids = []
    for i in range(5):
        row = await store.create("workflow" if i % 2 else "chat_completion", {"i": i})
        ids.append(row.id)
    await store.transition(ids[0], "cancelled")

    first, more = await store.list(limit=2)
    assert more and [r.id for r in first] == [ids[4], ids[3]]
    second, more = await store.list(limit=2, after=first[-1].id)
    assert more and [r.id for r in second] == [ids[2], ids[1]]
    third, more = await store.list(limit=2, after=second[-1].id)
    assert not more and [r.id for r in third] == [ids[0]]

    workflows, _ = await store.list(type="workflow")
    assert {r.id for r in workflows} == {ids[1], ids[3]}
    cancelled, _ = await store.list(status="cancelled")
    assert [r.id for r in cancelled] == [ids[0]]
    for bad in ({"status": "weird"}, {"type": "weird"}, {"limit": 0}, {"limit": 101}):
        with pytest.raises(InvalidRequest):
            await store.list(**bad)


async def test_progress_only_while_running(store: OperationStore):
    row = await store.create("ingestion", {})
    assert not await store.set_progress(row.id, {"done": 1})
    await store.transition(row.id, "running")
    assert await store.set_progress(row.id, {"done": 2})
    assert (await store.get(row.id)).progress == {"done": 2}


async def test_delete_expired_in_batches(store: OperationStore):
    finished = []
    for _ in range(5):
        row = await store.create("workflow", {}, webhook_url="https://example.com/h")
        await store.transition(row.id, "cancelled")
        await store.record_delivery(row.id, 1, status_code=200)
        finished.append(row.id)
    running = await store.create("workflow", {})
    await store.transition(running.id, "running")
    pending = await store.create("workflow", {})

    assert await store.delete_expired(utcnow() - timedelta(hours=1)) == 0
    assert await store.delete_expired(utcnow() + timedelta(seconds=1), batch_size=2) == 5
    assert await store.get_many(finished) == []
    assert await store.deliveries(finished[0]) == []
    assert {r.id for r in (await store.list())[0]} == {running.id, pending.id}


async def test_interrupted_lists_running(store: OperationStore):
    a = await store.create("workflow", {})
    await store.create("workflow", {})
    await store.transition(a.id, "running")
    assert [r.id for r in await store.interrupted()] == [a.id]
