"""Usage accounting: what each served request used and cost, written off the hot path.

`UsageRecorder.record(event)` only appends to an in-memory queue; a background
task writes batches with `INSERT ... ON CONFLICT (request_id) DO NOTHING`, so a
request recorded twice (a retry, a replayed event) is stored once.

Delivery guarantees, in order of what can go wrong:

* A failed write keeps its batch and is retried with exponential backoff
  (`retry_initial_s` doubling up to `retry_max_s`); events recorded meanwhile wait
  in the queue.
* The queue is bounded (`max_queue` events). While the database is down long
  enough to fill it, the **oldest** events are dropped, each one counted in
  `headrace_usage_dropped_total` and reported by an error log (the first drop of
  an episode, then at most one summary every 10 s). Memory stays bounded and the
  newest usage, the one budgets are about, is kept.
* `close()` flushes everything recorded before it (retrying for up to
  `close_timeout_s`), so a graceful shutdown loses nothing; what still could not
  be written then is reported in an error log.

`UsageQuery` answers `GET /admin/usage`: totals and groups aggregated in SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from prometheus_client import Counter, Gauge
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import ConfigurationError, InvalidRequest
from engine.logs import get_logger
from engine.schemas.models import Pricing
from engine.store.db import Database
from engine.store.tables import UsageRow
from engine.store.types import utcnow

log = get_logger("headrace.usage")

usage_written = Counter("headrace_usage_records_written_total", "Usage records flushed")
usage_dropped = Counter(
    "headrace_usage_dropped_total",
    "Usage records dropped because the queue overflowed while the database was unreachable",
)
usage_flush_failures = Counter(
    "headrace_usage_flush_failures_total", "Failed attempts to write a batch of usage records"
)
usage_queue_depth = Gauge("headrace_usage_queue_depth", "Usage records waiting to be written")

USAGE = UsageRow.__table__  # type: ignore[attr-defined]


@dataclasses.dataclass(slots=True)
class UsageEvent:
    """One served request's usage: the fields of `usage_records`."""

    request_id: str
    kind: str  # "chat", "embeddings", "responses", "messages"...
    created_at: datetime = dataclasses.field(default_factory=utcnow)
    key_id: str | None = None
    team_id: str | None = None
    model: str | None = None
    deployment: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int | None = None  # prompt + completion when not given
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    status: str = "ok"
    stream: bool = False

    def __post_init__(self) -> None:
        if self.total_tokens is None:
            self.total_tokens = self.prompt_tokens + self.completion_tokens
        if self.created_at.tzinfo is None:
            self.created_at = self.created_at.replace(tzinfo=UTC)

    def row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cost_of(pricing: Pricing | None, prompt_tokens: int, completion_tokens: int) -> float:
    """USD for a request's tokens at the model's prices (0 when it has none)."""
    if pricing is None:
        return 0.0
    return (prompt_tokens * pricing.input_cost_per_token
            + completion_tokens * pricing.output_cost_per_token)


def _insert(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(USAGE).on_conflict_do_nothing(index_elements=["request_id"])
    if dialect == "sqlite":
        return sqlite.insert(USAGE).on_conflict_do_nothing(index_elements=["request_id"])
    raise ConfigurationError(f"usage records need SQLite or PostgreSQL, not {dialect}")


class UsageRecorder:
    """Buffers usage events and writes them in batches from a background task.

    Call `start()` once the event loop runs (app start-up) and `await close()`
    at shutdown. `record()` is synchronous, never blocks and never raises.
    """

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = 200,
        flush_interval_s: float = 0.5,
        max_queue: int = 100_000,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        close_timeout_s: float = 30.0,
    ):
        if batch_size < 1 or max_queue < batch_size:
            raise ValueError("need 1 <= batch_size <= max_queue")
        self.db = db
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_queue = max_queue
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.close_timeout_s = close_timeout_s
        self._queue: deque[UsageEvent] = deque()
        self._batch: list[UsageEvent] | None = None  # taken from the queue, not yet written
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._deadline = float("inf")
        self._dropping_since_log = 0
        self._last_drop_log = 0.0
        self.dropped = 0
        self.written = 0
        self.last_error: str | None = None

    # --- hot path ------------------------------------------------------------------

    def record(self, event: UsageEvent) -> None:
        """Queue `event` for writing; drops the oldest queued event when full."""
        if len(self._queue) >= self.max_queue:
            self._queue.popleft()
            self._dropped_one()
        self._queue.append(event)
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    def _dropped_one(self) -> None:
        self.dropped += 1
        self._dropping_since_log += 1
        usage_dropped.inc()
        now = time.monotonic()
        if self._dropping_since_log == 1 or now - self._last_drop_log >= 10.0:
            log.error(
                "usage queue full; dropping the oldest usage records",
                dropped=self._dropping_since_log, dropped_total=self.dropped,
                max_queue=self.max_queue, error=self.last_error,
            )
            self._last_drop_log = now
            self._dropping_since_log = 0

    @property
    def pending(self) -> int:
        """Events recorded but not yet written."""
        return len(self._queue) + len(self._batch or ())

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._closing = False
            self._stop.clear()
            self._deadline = float("inf")
            self._task = asyncio.create_task(self._run(), name="headrace-usage-recorder")

    async def close(self) -> None:
        """Write everything recorded so far, then stop the background task."""
        self._closing = True
        self._deadline = time.monotonic() + self.close_timeout_s
        self._wake.set()
        self._stop.set()
        if self._task is not None and not self._task.done():
            await self._task
        else:
            await self._drain()
        self._task = None
        if self.pending:
            log.error("usage records could not be written before shutdown; they are lost",
                      lost=self.pending, error=self.last_error)

    async def flush(self) -> None:
        """Write everything queued now (retrying failures with backoff until written)."""
        deadline, self._deadline = self._deadline, time.monotonic() + self.close_timeout_s
        try:
            await self._drain()
        finally:
            self._deadline = deadline

    # --- writing -------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            await self._drain()
        await self._drain()

    async def _drain(self) -> None:
        """Write batches until nothing is left; back off and retry on failures."""
        delay = self.retry_initial_s
        while self._queue or self._batch:
            try:
                await self._write_batch()
                delay = self.retry_initial_s
            except Exception as error:
                usage_flush_failures.inc()
                self.last_error = f"{type(error).__name__}: {error}"[:300]
                log.warning("writing usage records failed; will retry",
                            pending=self.pending, retry_in_s=delay, error=self.last_error)
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    return
                # Back off; `close()` cuts the wait short to try once more at once.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=min(delay, remaining))
                delay = min(delay * 2, self.retry_max_s)
            finally:
                usage_queue_depth.set(self.pending)

    async def _write_batch(self) -> None:
        async with self._write_lock:
            if self._batch is None:
                if not self._queue:
                    return
                count = min(self.batch_size, len(self._queue))
                self._batch = [self._queue.popleft() for _ in range(count)]
            rows: dict[str, dict[str, Any]] = {}
            for event in self._batch:
                rows.setdefault(event.request_id, event.row())
            statement = _insert(self.db.engine.dialect.name)
            async with self.db.engine.begin() as conn:
                await conn.execute(statement, list(rows.values()))
            self.written += len(self._batch)
            usage_written.inc(len(self._batch))
            self._batch = None
            if self.last_error is not None:
                log.warning("writing usage records works again", pending=self.pending)
                self.last_error = None


# --- reading -----------------------------------------------------------------------------

GroupBy = Literal["none", "hour", "day", "model", "key", "team"]
GROUP_BY: tuple[str, ...] = ("none", "hour", "day", "model", "key", "team")
TOTAL_FIELDS = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens",
                "cost_usd", "avg_latency_ms")


def _measures() -> list[Any]:
    c = USAGE.c
    return [
        sa.func.count().label("requests"),
        sa.func.coalesce(sa.func.sum(sa.case((c.status != "ok", 1), else_=0)), 0)
        .label("errors"),
        sa.func.coalesce(sa.func.sum(c.prompt_tokens), 0).label("prompt_tokens"),
        sa.func.coalesce(sa.func.sum(c.completion_tokens), 0).label("completion_tokens"),
        sa.func.coalesce(sa.func.sum(c.total_tokens), 0).label("total_tokens"),
        sa.func.coalesce(sa.func.sum(c.cost_usd), 0.0).label("cost_usd"),
        sa.func.avg(c.latency_ms).label("avg_latency_ms"),
    ]


def _totals(row: Any) -> dict[str, Any]:
    return {
        "requests": int(row.requests),
        "errors": int(row.errors),
        "prompt_tokens": int(row.prompt_tokens),
        "completion_tokens": int(row.completion_tokens),
        "total_tokens": int(row.total_tokens),
        "cost_usd": round(float(row.cost_usd), 10),
        "avg_latency_ms": (None if row.avg_latency_ms is None
                           else round(float(row.avg_latency_ms), 3)),
    }


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UsageQuery:
    """Aggregates of `usage_records`, filtered and grouped in SQL."""

    def __init__(self, db: Database):
        self.db = db

    def _day(self) -> Any:
        created = USAGE.c.created_at
        if self.db.engine.dialect.name == "postgresql":
            # The UTC calendar day, whatever the session's time zone. A literal,
            # not a bound parameter, so GROUP BY repeats the SELECT expression.
            return sa.cast(sa.func.timezone(sa.literal_column("'UTC'"), created), sa.Date)
        return sa.func.date(created)  # SQLite stores UTC text: "YYYY-MM-DD hh:mm:ss"

    def _hour(self) -> Any:
        """The UTC hour as `YYYY-MM-DDThh:00:00Z`."""
        created = USAGE.c.created_at
        if self.db.engine.dialect.name == "postgresql":
            utc = sa.func.timezone(sa.literal_column("'UTC'"), created)
            return sa.func.to_char(utc, sa.literal_column("'YYYY-MM-DD\"T\"HH24:00:00\"Z\"'"))
        return sa.func.strftime("%Y-%m-%dT%H:00:00Z", created)

    def _group_column(self, group_by: str) -> Any:
        c = USAGE.c
        return {"hour": self._hour, "day": self._day, "model": lambda: c.model,
                "key": lambda: c.key_id, "team": lambda: c.team_id}[group_by]()

    async def query(
        self,
        *,
        key_id: str | None = None,
        team_id: str | None = None,
        model: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        group_by: str = "none",
        limit: int = 1000,
    ) -> dict[str, Any]:
        """Totals over records with `start <= created_at < end` (naive times are UTC)."""
        if group_by not in GROUP_BY:
            raise InvalidRequest(f"group_by must be one of {', '.join(GROUP_BY)}",
                                 param="group_by", code="invalid_value")
        start, end = _utc(start), _utc(end)
        if start is not None and end is not None and end <= start:
            raise InvalidRequest("end must be after start", param="end", code="invalid_value")
        c = USAGE.c
        conditions = []
        if key_id is not None:
            conditions.append(c.key_id == key_id)
        if team_id is not None:
            conditions.append(c.team_id == team_id)
        if model is not None:
            conditions.append(c.model == model)
        if start is not None:
            conditions.append(c.created_at >= start)
        if end is not None:
            conditions.append(c.created_at < end)

        groups: list[dict[str, Any]] = []
        async with self.db.engine.connect() as conn:
            totals = (await conn.execute(sa.select(*_measures()).where(*conditions))).one()
            if group_by != "none":
                key = self._group_column(group_by).label("group_key")
                statement = (
                    sa.select(key, *_measures()).where(*conditions).group_by(key)
                    .order_by(key.asc().nulls_last()).limit(limit)
                )
                for row in await conn.execute(statement):
                    value = row.group_key
                    if hasattr(value, "isoformat"):
                        value = value.isoformat()
                    groups.append({"key": value, **_totals(row)})
        return {
            "object": "usage",
            "filters": {
                "key_id": key_id, "team_id": team_id, "model": model,
                "start": start.isoformat() if start else None,
                "end": end.isoformat() if end else None,
            },
            "group_by": group_by,
            "totals": _totals(totals),
            "groups": groups,
        }

    async def spent_since(self, *, key_id: str | None = None, team_id: str | None = None,
                          since: datetime) -> float:
        """Cost recorded for a key or a team since `since` (what budgets are seeded with)."""
        c = USAGE.c
        column, value = (c.key_id, key_id) if key_id is not None else (c.team_id, team_id)
        statement = sa.select(sa.func.coalesce(sa.func.sum(c.cost_usd), 0.0)).where(
            column == value, c.created_at >= _utc(since)
        )
        async with self.db.engine.connect() as conn:
            return float((await conn.execute(statement)).scalar_one())
