"""Token counting, usage accounting and budgets: components and their admin routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from quart import Quart
from redis.asyncio import Redis

from api.admin import governance_usage
from api.errors import register_error_handlers
from api.jsonio import OrjsonProvider
from connectors.state.redis_budgets import FailoverBudgetLedger, RedisBudgetLedger
from engine import tokens
from engine.errors import BudgetExceeded
from engine.governance.budgets import (
    BudgetGuard,
    BudgetWindow,
    MemoryBudgetLedger,
    period_end,
    period_start,
    spend_from_usage,
)
from engine.governance.usage import UsageEvent, UsageQuery, UsageRecorder, cost_of
from engine.schemas.governance import BudgetSpec
from engine.schemas.models import Pricing
from engine.store import Database, ResourceStore
from engine.store.migrate import upgrade
from engine.store.tables import UsageRow
from tests.support.services import free_port

USAGE = UsageRow.__table__


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database)
    yield database
    await database.close()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}")
    await upgrade(database)
    yield database
    await database.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """Run a test on the in-process ledger (None) and on Redis (its URL)."""
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_url")


@contextlib.asynccontextmanager
async def ledgers(url: str | None, count: int = 1, **options) -> AsyncIterator[list]:
    """`count` ledgers: one process's, or `count` replicas sharing one Redis."""
    if url is None:
        yield [MemoryBudgetLedger(**options)] * count
        return
    client = Redis.from_url(url)
    try:
        yield [RedisBudgetLedger(client, **options) for _ in range(count)]
    finally:
        await client.aclose()


async def row_count(db: Database) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(USAGE))).scalar_one()


def budget(**fields) -> BudgetSpec:
    base = {"id": "team-monthly", "scope": "team", "scope_id": "acme", "amount_usd": 1.0,
            "period": "monthly"}
    return BudgetSpec.model_validate({**base, **fields})


# --- tokens ------------------------------------------------------------------------------


def test_token_counts_known_values():
    assert tokens.count_tokens("hello world") == 2
    assert tokens.get_encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert tokens.count_tokens("hello world", "gpt-4o") == 2
    assert tokens.get_encoding("o200k_base").encode("hello world") == [24912, 2375]
    text = "Hello, how are you doing today? 日本語"
    assert tokens.count_tokens(text, "gpt-3.5-turbo") == 12  # cl100k
    assert tokens.count_tokens(text, "openai/gpt-4o-mini") == 10  # o200k
    assert tokens.count_tokens("") == 0
    # Special-token text is ordinary text, never an error.
    assert tokens.count_tokens("<|endoftext|>") > 1


@pytest.mark.parametrize(("model", "encoding"), [
    ("gpt-4o", "o200k_base"), ("gpt-4o-mini-2024-07-18", "o200k_base"), ("o1", "o200k_base"),
    ("o3-mini", "o200k_base"), ("gpt-4.1-nano", "o200k_base"), ("azure/gpt-4o", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"),
    ("claude-3-5-sonnet", "cl100k_base"),
    (None, "cl100k_base"),
])
def test_encoding_by_model(model, encoding):
    assert tokens.encoding_name_for(model) == encoding


def test_count_messages_uses_openais_overheads():
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello!", "name": "bob"}]
    # 3 primed + (3 + role 1 + 6) + (3 + role 1 + 2 + name 1 + 1)
    assert tokens.count_messages(messages, "gpt-4") == 3 + 10 + 8
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hello!"},
                                          {"type": "image_url", "image_url": {"url": "x"}}]}]
    assert tokens.count_messages(parts, "gpt-4o") == 3 + 3 + 1 + 2 + tokens.IMAGE_TOKENS


async def test_count_tokens_async_matches_and_offloads_long_texts():
    long_text = "lorem ipsum dolor sit amet " * 2000  # > 20k chars: counted in a thread
    assert len(long_text) > tokens.ASYNC_THRESHOLD_CHARS
    assert await tokens.count_tokens_async(long_text, "gpt-4o") == tokens.count_tokens(
        long_text, "gpt-4o")
    assert await tokens.count_tokens_async("hello world") == 2


def test_tokenizer_files_come_from_the_package_not_the_network(tmp_path: Path):
    """A fresh process with no cache and downloads disabled still counts tokens."""
    script = textwrap.dedent("""
        import tiktoken.load
        def no_network(url):
            raise AssertionError(f"download attempted: {url}")
        tiktoken.load.read_file = no_network
        from engine import tokens
        print(tokens.count_tokens("hello world"), tokens.count_tokens("hello world", "gpt-4o"))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR",
                                                            "DATA_GYM_CACHE_DIR")}
    env["HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, cwd=Path(__file__).parent.parent, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "2"]
    cached = sorted(p.name for p in (tmp_path / ".cache" / "headrace" / "tiktoken").iterdir())
    assert cached == sorted([
        "9b5ad71b2ce5302211f9c61530b329a4922fc6a4",  # sha1 of the cl100k_base url
        "fb374d419588a4632f3f557e76b4b70aebbca790",  # sha1 of the o200k_base url
    ])


# --- usage recording ---------------------------------------------------------------------


def test_cost_of():
    pricing = Pricing(input_cost_per_token=1e-6, output_cost_per_token=3e-6)
    assert cost_of(pricing, 1000, 500) == pytest.approx(0.0025)
    assert cost_of(None, 1000, 500) == 0.0
    assert UsageEvent("r", "chat", prompt_tokens=3, completion_tokens=4).total_tokens == 7


async def test_recorder_batches_in_background_and_is_idempotent(db: Database):
    recorder = UsageRecorder(db, batch_size=10, flush_interval_s=60)
    recorder.start()
    try:
        for i in range(10):  # a full batch is written at once, not after the interval
            recorder.record(UsageEvent(f"req-{i}", "chat", key_id="k1", cost_usd=0.01))
        for _ in range(100):
            if await row_count(db) == 10:
                break
            await asyncio.sleep(0.05)
        assert await row_count(db) == 10
        # The same request id recorded again, in another batch and within one batch.
        recorder.record(UsageEvent("req-3", "chat", key_id="k1", cost_usd=5.0))
        recorder.record(UsageEvent("dup", "chat", key_id="k1"))
        recorder.record(UsageEvent("dup", "chat", key_id="k1"))
        await recorder.flush()
    finally:
        await recorder.close()
    assert await row_count(db) == 11
    async with db.engine.connect() as conn:
        cost = (await conn.execute(
            sa.select(USAGE.c.cost_usd).where(USAGE.c.request_id == "req-3"))).scalar_one()
    assert cost == pytest.approx(0.01)  # the first write wins


async def test_close_flushes_everything(db: Database):
    recorder = UsageRecorder(db, batch_size=200, flush_interval_s=5)
    recorder.start()
    for i in range(500):
        recorder.record(UsageEvent(f"close-{i}", "chat", model="m", prompt_tokens=i))
    await recorder.close()
    assert recorder.pending == 0
    assert await row_count(db) == 500


async def test_failed_flush_keeps_the_batch_and_retries(tmp_path: Path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'late.db'}")
    recorder = UsageRecorder(database, batch_size=5, flush_interval_s=0.05,
                             retry_initial_s=0.05, retry_max_s=0.1)
    recorder.start()
    try:
        for i in range(12):
            recorder.record(UsageEvent(f"late-{i}", "chat"))
        await asyncio.sleep(0.3)  # no table yet: every write fails and is kept
        assert recorder.pending == 12
        assert recorder.last_error is not None
        await upgrade(database)
        await recorder.close()
        assert recorder.pending == 0
        assert await row_count(database) == 12
    finally:
        await database.close()


async def test_overflow_drops_the_oldest(sqlite_db: Database):
    recorder = UsageRecorder(sqlite_db, batch_size=5, max_queue=10)
    for i in range(15):
        recorder.record(UsageEvent(f"o-{i:02d}", "chat"))
    assert recorder.dropped == 5
    await recorder.close()  # never started: close writes what is queued
    async with sqlite_db.engine.connect() as conn:
        ids = (await conn.execute(sa.select(USAGE.c.request_id).order_by(
            USAGE.c.request_id))).scalars().all()
    assert ids == [f"o-{i:02d}" for i in range(5, 15)]


# --- usage queries -----------------------------------------------------------------------

DAY1 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
DAY2 = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
# 21:00 at UTC-05:00 on the 10th is 02:00 UTC on the 11th: days are UTC days.
EVENING_WEST = datetime(2026, 3, 10, 21, 0, tzinfo=timezone(timedelta(hours=-5)))


async def seed_usage(db: Database) -> None:
    recorder = UsageRecorder(db)
    rows = [
        ("a", DAY1, "k1", "t1", "gpt", 10, 5, 0.10),
        ("b", DAY1, "k1", "t1", "claude", 20, 10, 0.20),
        ("c", DAY2, "k2", "t1", "gpt", 30, 15, 0.30),
        ("d", DAY2, "k3", None, "gpt", 40, 20, 0.40),
        ("e", datetime(2026, 3, 10, 12, 0, tzinfo=UTC), "k3", None, None, 1, 1, 0.01),
        ("f", EVENING_WEST, "k1", None, "gpt", 2, 2, 0.02),
    ]
    for rid, when, key, team, model, p, c, cost in rows:
        recorder.record(UsageEvent(rid, "chat", created_at=when, key_id=key, team_id=team,
                                   model=model, prompt_tokens=p, completion_tokens=c,
                                   cost_usd=cost))
    await recorder.close()


async def test_usage_query_totals_and_groups(db: Database):
    await seed_usage(db)
    query = UsageQuery(db)

    everything = await query.query()
    assert everything["object"] == "usage"
    assert everything["totals"] == {"requests": 6, "errors": 0, "prompt_tokens": 103,
                                    "completion_tokens": 53, "total_tokens": 156,
                                    "cost_usd": pytest.approx(1.03), "avg_latency_ms": 0.0}
    assert everything["groups"] == []

    by_day = await query.query(group_by="day")
    assert [(g["key"], g["requests"], g["cost_usd"]) for g in by_day["groups"]] == [
        ("2026-03-09", 2, pytest.approx(0.30)), ("2026-03-10", 3, pytest.approx(0.71)),
        ("2026-03-11", 1, pytest.approx(0.02)),
    ]
    assert sum(g["requests"] for g in by_day["groups"]) == everything["totals"]["requests"]

    by_model = await query.query(group_by="model")
    assert [(g["key"], g["requests"], g["total_tokens"]) for g in by_model["groups"]] == [
        ("claude", 1, 30), ("gpt", 4, 15 + 45 + 60 + 4), (None, 1, 2),
    ]

    by_key = await query.query(group_by="key", model="gpt")
    assert [(g["key"], g["requests"]) for g in by_key["groups"]] == [
        ("k1", 2), ("k2", 1), ("k3", 1)]
    assert by_key["filters"]["model"] == "gpt"
    assert by_key["totals"]["requests"] == 4

    by_team = await query.query(group_by="team")
    assert [(g["key"], g["requests"]) for g in by_team["groups"]] == [("t1", 3), (None, 3)]

    window = await query.query(start=datetime(2026, 3, 10, tzinfo=UTC),
                               end=datetime(2026, 3, 10, 23, tzinfo=UTC), group_by="day")
    assert window["totals"]["requests"] == 1  # only e: c and d are at 23:30, f is the 11th
    assert window["totals"]["requests"] == sum(g["requests"] for g in window["groups"])
    assert window["filters"]["start"] == "2026-03-10T00:00:00+00:00"

    only_team = await query.query(team_id="t1", key_id="k1")
    assert only_team["totals"]["requests"] == 2
    assert only_team["totals"]["cost_usd"] == pytest.approx(0.30)


async def test_usage_counts_errors_averages_latency_and_groups_by_hour(db: Database):
    recorder = UsageRecorder(db)
    for rid, when, status, latency in (
        ("h1", datetime(2026, 3, 9, 10, 5, tzinfo=UTC), "ok", 100.0),
        ("h2", datetime(2026, 3, 9, 10, 55, tzinfo=UTC), "upstream_error", 300.0),
        ("h3", datetime(2026, 3, 9, 11, 0, tzinfo=UTC), "ok", 50.0),
        ("h4", EVENING_WEST, "cancelled", 10.0),  # 02:00 UTC on the 11th
    ):
        recorder.record(UsageEvent(rid, "chat", created_at=when, status=status,
                                   latency_ms=latency))
    await recorder.close()
    query = UsageQuery(db)

    everything = await query.query()
    assert everything["totals"]["errors"] == 2
    assert everything["totals"]["avg_latency_ms"] == pytest.approx(115.0)

    by_hour = await query.query(group_by="hour")
    assert [(g["key"], g["requests"], g["errors"], g["avg_latency_ms"])
            for g in by_hour["groups"]] == [
        ("2026-03-09T10:00:00Z", 2, 1, pytest.approx(200.0)),
        ("2026-03-09T11:00:00Z", 1, 0, pytest.approx(50.0)),
        ("2026-03-11T02:00:00Z", 1, 1, pytest.approx(10.0)),
    ]

    empty = await query.query(start=datetime(2030, 1, 1, tzinfo=UTC))
    assert empty["totals"]["requests"] == 0 and empty["totals"]["avg_latency_ms"] is None


# --- the admin routes --------------------------------------------------------------------


async def admin_app(db: Database, budgets: BudgetGuard) -> Quart:
    app = Quart(__name__)
    register_error_handlers(app)
    app.json = OrjsonProvider(app)
    app.extensions["headrace"] = SimpleNamespace(db=db, resources=ResourceStore(db),
                                                 budgets=budgets)
    app.register_blueprint(governance_usage.blueprint)
    return app


async def test_admin_usage_route(sqlite_db: Database):
    await seed_usage(sqlite_db)
    app = await admin_app(sqlite_db, BudgetGuard(MemoryBudgetLedger()))
    client = app.test_client()

    response = await client.get("/admin/usage", query_string={"group_by": "day"})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["group_by"] == "day"
    assert body["totals"]["requests"] == 6
    assert [g["key"] for g in body["groups"]] == ["2026-03-09", "2026-03-10", "2026-03-11"]

    response = await client.get("/admin/usage", query_string={
        "start": "2026-03-10", "end": "2026-03-12T00:00:00Z", "key_id": "k1"})
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["totals"]["requests"] == 1
    assert body["filters"]["start"] == "2026-03-10T00:00:00+00:00"

    for bad in ({"group_by": "week"}, {"start": "yesterday"}, {"end": "2026-13-01"},
                {"start": "2026-03-10", "end": "2026-03-09"}, {"colour": "red"},
                {"start": "0001-01-01T00:00:00+01:00"}, {"key_id": "k\x00"}):
        response = await client.get("/admin/usage", query_string=bad)
        assert response.status_code == 400, bad
        error = (await response.get_json())["error"]
        assert error["type"] == "invalid_request_error"


async def test_admin_budget_status_route(sqlite_db: Database):
    store = ResourceStore(sqlite_db)
    spec = budget(id="acme-daily", period="daily", amount_usd=2.0, soft_limit=0.5)
    await store.create("budget", spec.id, spec.model_dump(mode="json"))
    guard = BudgetGuard(MemoryBudgetLedger(spend_from_usage(sqlite_db)))
    app = await admin_app(sqlite_db, guard)
    client = app.test_client()

    reservation = await guard.reserve([spec], 0.25)
    await (await guard.reserve([spec], 1.0)).settle(1.2)
    response = await client.get("/admin/budgets/acme-daily/status")
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["spent_usd"] == pytest.approx(1.2)
    assert body["reserved_usd"] == pytest.approx(0.25)
    assert body["remaining_usd"] == pytest.approx(0.55)
    assert body["percent"] == pytest.approx(60.0)
    assert body["state"] == "soft_limit"
    assert datetime.fromisoformat(body["period_start"]) == period_start("daily")
    assert datetime.fromisoformat(body["period_end"]) == period_start("daily") + timedelta(days=1)
    await reservation.cancel()

    assert (await client.get("/admin/budgets/nope/status")).status_code == 404


# --- budgets -----------------------------------------------------------------------------


def test_periods_are_utc_calendar_periods():
    now = datetime(2026, 12, 31, 22, 15, tzinfo=UTC)  # a Thursday
    assert period_start("daily", now) == datetime(2026, 12, 31, tzinfo=UTC)
    assert period_start("weekly", now) == datetime(2026, 12, 28, tzinfo=UTC)  # Monday
    assert period_start("monthly", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert period_start("lifetime", now) == datetime(1970, 1, 1, tzinfo=UTC)
    assert period_end("monthly", datetime(2026, 12, 1, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC)
    assert period_end("weekly", datetime(2026, 12, 28, tzinfo=UTC)) == datetime(
        2027, 1, 4, tzinfo=UTC)
    assert period_end("lifetime", period_start("lifetime")) is None
    # Another zone's evening is already tomorrow in UTC.
    evening = datetime(2026, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert period_start("daily", evening) == datetime(2026, 3, 2, tzinfo=UTC)


def test_applicable_and_estimate():
    budgets = [budget(id="b1", scope="key", scope_id="k1"),
               budget(id="b2", scope="team", scope_id="acme"),
               budget(id="b3", scope="team", scope_id="other"),
               budget(id="b4", scope="key", scope_id="k1", enabled=False)]
    guard = BudgetGuard(MemoryBudgetLedger())
    assert [b.id for b in guard.applicable("k1", "acme", budgets)] == ["b1", "b2"]
    assert [b.id for b in guard.applicable("k2", None, budgets)] == []
    pricing = Pricing(input_cost_per_token=1e-6, output_cost_per_token=2e-6)
    assert guard.estimate_cost(pricing, 100, 50) == pytest.approx(100e-6 + 100e-6)
    assert guard.estimate_cost(pricing, 100, None) == pytest.approx(100e-6 + 4096 * 2e-6)
    assert guard.estimate_cost(pricing, 100, None, context_window=1100) == pytest.approx(
        100e-6 + 1000 * 2e-6)
    assert guard.estimate_cost(None, 100, 50) == 0.0


async def race(guards: list[BudgetGuard], spec: BudgetSpec, n: int = 100,
               estimate: float = 0.05, actual: float = 0.05) -> tuple[int, list[BaseException]]:
    async def one(i: int) -> None:
        guard = guards[i % len(guards)]
        reservation = await guard.reserve([spec], estimate)
        await asyncio.sleep(random.uniform(0, 0.01))  # the upstream call
        await reservation.settle(actual)

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    refusals = [r for r in results if isinstance(r, BaseException)]
    return n - len(refusals), refusals


def check_race(spec: BudgetSpec, admitted: int, refusals: list[BaseException],
               spent: float) -> None:
    assert spent <= spec.amount_usd + 0.05 + 1e-9
    assert admitted == 20  # exactly the budget's worth of $0.05 requests
    assert len(refusals) == 80
    for error in refusals:
        assert isinstance(error, BudgetExceeded), error
        assert error.code == "budget_exceeded"
        assert "budget 'team-monthly' (team acme, monthly) is exhausted" in error.message


async def test_budget_race_memory_ledger():
    spec = budget()
    guard = BudgetGuard(MemoryBudgetLedger())
    admitted, refusals = await race([guard], spec)
    status = await guard.status(spec)
    check_race(spec, admitted, refusals, status["spent_usd"])
    assert status["spent_usd"] == pytest.approx(1.0)
    assert status["reserved_usd"] == 0
    assert status["state"] == "exhausted"
    with pytest.raises(BudgetExceeded, match=r"spent \$1\.00 of \$1\.00$"):
        await guard.reserve([spec], 0.05)


async def test_budget_race_redis_ledger_across_replicas(redis_client: Redis):
    spec = budget()
    replicas = [BudgetGuard(RedisBudgetLedger(redis_client)) for _ in range(3)]
    admitted, refusals = await race(replicas, spec)
    status = await replicas[0].status(spec)
    check_race(spec, admitted, refusals, status["spent_usd"])
    assert status["spent_usd"] == pytest.approx(1.0)
    assert status["reserved_usd"] == 0


async def test_cancel_releases_and_soft_budgets_never_refuse():
    spec = budget(amount_usd=0.10)
    guard = BudgetGuard(MemoryBudgetLedger())
    held = await guard.reserve([spec], 0.10)
    with pytest.raises(BudgetExceeded):
        await guard.reserve([spec], 0.01)
    await held.cancel()
    async with await guard.reserve([spec], 0.10):
        pass  # leaving the block unsettled cancels
    assert (await guard.status(spec))["reserved_usd"] == 0

    alert_only = budget(id="alert", amount_usd=0.10, hard_limit=False)
    await (await guard.reserve([alert_only], 0.5)).settle(0.5)
    await (await guard.reserve([alert_only], 0.5)).settle(0.5)  # over, still admitted
    assert (await guard.status(alert_only))["state"] == "exhausted"


async def test_reserve_is_all_or_nothing_across_budgets():
    key_budget = budget(id="key-b", scope="key", scope_id="k1", amount_usd=10.0)
    team_budget = budget(amount_usd=0.10)
    guard = BudgetGuard(MemoryBudgetLedger())
    await (await guard.reserve([team_budget], 0.10)).settle(0.10)
    with pytest.raises(BudgetExceeded, match="team-monthly"):
        await guard.reserve([key_budget, team_budget], 1.0)
    assert (await guard.status(key_budget))["reserved_usd"] == 0


async def test_expired_leases_free_the_budget():
    spec = budget(amount_usd=0.10)
    guard = BudgetGuard(MemoryBudgetLedger(lease_s=0.05))
    await guard.reserve([spec], 0.10)  # never settled: its process "crashed"
    with pytest.raises(BudgetExceeded):
        await guard.reserve([spec], 0.01)
    await asyncio.sleep(1.1)
    await (await guard.reserve([spec], 0.01)).settle(0.01)


async def test_period_rollover(backend):
    clock = SimpleNamespace(now=datetime(2026, 1, 31, 23, 59, 30, tzinfo=UTC))
    async with ledgers(backend) as (ledger,):
        guard = BudgetGuard(ledger, clock=lambda: clock.now)
        spec = budget(period="monthly", amount_usd=0.10)
        await (await guard.reserve([spec], 0.10)).settle(0.10)
        with pytest.raises(BudgetExceeded):
            await guard.reserve([spec], 0.01)
        clock.now = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)
        fresh = await guard.status(spec)
        assert fresh["spent_usd"] == 0
        assert fresh["period_start"] == datetime(2026, 2, 1, tzinfo=UTC)
        assert fresh["period_end"] == datetime(2026, 3, 1, tzinfo=UTC)
        await (await guard.reserve([spec], 0.05)).settle(0.05)
        assert (await guard.status(spec))["state"] == "ok"


async def test_ledgers_are_seeded_from_usage_records(db: Database, redis_url: str):
    now = datetime.now(UTC)
    recorder = UsageRecorder(db)
    for rid, when, team, cost in [
        ("s1", now, "acme", 0.60), ("s2", now, "acme", 0.30),
        ("s3", period_start("monthly", now) - timedelta(seconds=1), "acme", 5.0),  # last month
        ("s4", now, "other", 7.0),
    ]:
        recorder.record(UsageEvent(rid, "chat", created_at=when, team_id=team, cost_usd=cost))
    await recorder.close()
    spec = budget()  # acme, monthly, $1.00

    # "Restart": brand-new ledgers know the spend of this period.
    client = Redis.from_url(redis_url)
    try:
        for ledger in (MemoryBudgetLedger(spend_from_usage(db)),
                       RedisBudgetLedger(client, spend_from_usage(db))):
            guard = BudgetGuard(ledger)
            assert (await guard.status(spec))["spent_usd"] == pytest.approx(0.90)
            await (await guard.reserve([spec], 0.05)).settle(0.05)
            await (await guard.reserve([spec], 0.05)).settle(0.05)
            with pytest.raises(BudgetExceeded, match=r"spent \$1\.00 of \$1\.00"):
                await guard.reserve([spec], 0.05)

        # Redis keeps the state across a restart of the process: no reseeding.
        again = BudgetGuard(RedisBudgetLedger(client, spend_from_usage(db)))
        assert (await again.status(spec))["spent_usd"] == pytest.approx(1.0)
    finally:
        await client.aclose()


def soft_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "headrace.budgets" and "budget soft limit reached" in str(r.msg)]


async def test_soft_limit_warns_once_per_period(backend, caplog):
    spec = budget(amount_usd=1.0, soft_limit=0.5)
    caplog.set_level(logging.WARNING, logger="headrace.budgets")
    async with ledgers(backend, count=2) as replicas:
        guards = [BudgetGuard(ledger) for ledger in replicas]
        for i in range(5):  # 0.2 ... 1.0: crosses 0.5 once
            await (await guards[i % 2].reserve([spec], 0.2)).settle(0.2)
        assert len(soft_warnings(caplog)) == 1
        assert (await guards[0].status(spec))["state"] == "exhausted"


# --- failover ----------------------------------------------------------------------------


async def test_failover_ledger_enforces_in_process_while_redis_is_down(redis_client: Redis):
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2,
                          socket_timeout=0.2)
    ledger = FailoverBudgetLedger(RedisBudgetLedger(dead), retry_s=60)
    guard = BudgetGuard(ledger)
    spec = budget()
    admitted, refusals = await race([guard], spec)
    assert ledger.degraded
    check_race(spec, admitted, refusals, (await guard.status(spec))["spent_usd"])
    await dead.aclose()

    # Redis is back: the spend made meanwhile is added to the shared account.
    shared = RedisBudgetLedger(redis_client)
    await BudgetGuard(shared).status(spec)  # the account exists (seeded before the outage)
    ledger.redis = shared
    ledger.outage._retry_at = 0  # time to try Redis again
    status = await guard.status(spec)
    assert not ledger.degraded
    assert status["spent_usd"] == pytest.approx(1.0)
    with pytest.raises(BudgetExceeded):
        await guard.reserve([spec], 0.05)


async def test_window_keys_separate_periods_and_scopes():
    a = BudgetWindow.of(budget(), datetime(2026, 1, 5, tzinfo=UTC))
    b = BudgetWindow.of(budget(), datetime(2026, 2, 5, tzinfo=UTC))
    c = BudgetWindow.of(budget(scope_id="other"), datetime(2026, 1, 5, tzinfo=UTC))
    assert len({a.key, b.key, c.key}) == 3
