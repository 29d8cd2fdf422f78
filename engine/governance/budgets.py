"""Budgets: spend limits per key or team and period, enforced under concurrency.

The guarantee: N requests in parallel cannot overspend a budget by more than
one request's worth. A ledger keeps, per budget and period, what was `spent`
(settled costs) and what is `reserved` (estimates of requests in flight):

1. Before calling upstream, `BudgetGuard.reserve(budgets, estimate_usd)` checks
   every applicable hard budget for `spent + reserved < amount` and, only if all
   pass, adds the estimate to each one's `reserved`, in one atomic step (no
   await between check and add in process; one Lua script in Redis). Otherwise
   it raises `BudgetExceeded` (code `budget_exceeded`, HTTP 429) naming the
   budget. Reservations count against the budget, so a burst cannot all pass
   the check before any of them is charged.
2. After the call, `Reservation.settle(actual_usd)` moves the actual cost into
   `spent` and releases the estimate; `Reservation.cancel()` releases it when
   nothing was spent. A reservation that is never settled (a crashed replica)
   expires after `lease_s`, so it cannot hold a budget forever.

Only the last request admitted can push spend past the amount (by at most its
own cost), hence "at most one request's worth" - as long as estimates are upper
bounds, which `BudgetGuard.estimate_cost` computes.

Periods are UTC: daily from midnight, weekly from Monday, monthly from the 1st,
lifetime from the epoch. A ledger account is keyed by budget, scope and period
start, so a new period starts a new account, and is seeded on first touch
with the cost in `usage_records` for the scope since the period start: a
restart, or a Redis that lost its data, does not forget spend.

Amounts are kept as integer nano-dollars so sums are exact.

A budget with `hard_limit: false` is tracked the same way but never refuses.
Crossing `soft_limit * amount` logs one warning per budget and period (per
ledger: Redis shares the flag between replicas).

Ledgers: `MemoryBudgetLedger` (exact for one process) and, in
`connectors.state.redis_budgets`, `RedisBudgetLedger` and
`FailoverBudgetLedger` (Redis, in-process while Redis is unreachable).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from prometheus_client import Counter

from engine.errors import BudgetExceeded, ServiceUnavailable
from engine.logs import get_logger
from engine.schemas.governance import BudgetSpec
from engine.schemas.models import Pricing
from engine.store.db import Database
from engine.store.types import utcnow

log = get_logger("headrace.budgets")

budget_refusals = Counter(
    "headrace_budget_refusals_total", "Requests refused because a budget is exhausted",
    ["budget"],
)
budget_soft_limits = Counter(
    "headrace_budget_soft_limit_total", "Budgets that crossed their soft limit in a period",
    ["budget"],
)

NANO = 1_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Completion tokens assumed when a request sets no max_tokens (and the model
# declares no smaller room left in its context window).
DEFAULT_MAX_TOKENS = 4096
DEFAULT_LEASE_S = 900.0  # longer than any request may take (total timeout <= 600 s)

Seeder = Callable[[BudgetSpec, datetime], Awaitable[float]]


def to_nano(usd: float) -> int:
    return max(0, round(usd * NANO))


def to_usd(nano: int) -> float:
    return round(nano / NANO, 9)


# --- periods -----------------------------------------------------------------------------


def period_start(period: str, now: datetime | None = None) -> datetime:
    now = (now or utcnow()).astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return midnight
    if period == "weekly":
        return midnight - timedelta(days=midnight.weekday())
    if period == "monthly":
        return midnight.replace(day=1)
    if period == "lifetime":
        return EPOCH
    raise ValueError(f"unknown budget period {period!r}")


def period_end(period: str, start: datetime) -> datetime | None:
    """The start of the next period (None for lifetime)."""
    if period == "daily":
        return start + timedelta(days=1)
    if period == "weekly":
        return start + timedelta(days=7)
    if period == "monthly":
        return (start.replace(year=start.year + 1, month=1) if start.month == 12
                else start.replace(month=start.month + 1))
    return None


@dataclass(frozen=True)
class BudgetWindow:
    """A budget in one period: what a ledger account is keyed by."""

    budget: BudgetSpec
    start: datetime
    end: datetime | None

    @classmethod
    def of(cls, budget: BudgetSpec, now: datetime | None = None) -> BudgetWindow:
        start = period_start(budget.period, now)
        return cls(budget, start, period_end(budget.period, start))

    @property
    def key(self) -> str:
        b = self.budget
        return f"{b.id}:{b.scope}:{b.scope_id}:{b.period}:{int(self.start.timestamp())}"

    @property
    def amount_nano(self) -> int:
        return to_nano(self.budget.amount_usd)

    @property
    def soft_nano(self) -> int:
        return to_nano(self.budget.amount_usd * self.budget.soft_limit)

    @property
    def hard(self) -> bool:
        return self.budget.hard_limit

    def ttl_s(self, margin_s: float, now: datetime | None = None) -> float:
        """How long shared state for this window must live: to the period end + margin."""
        if self.end is None:
            return 30 * 86400 + margin_s  # refreshed on every touch; reseeded if it lapses
        return max((self.end - (now or utcnow())).total_seconds(), 0) + margin_s


def exhausted(window: BudgetWindow, spent_nano: int, reserved_nano: int) -> BudgetExceeded:
    b = window.budget
    message = (f"budget '{b.id}' ({b.scope} {b.scope_id}, {b.period}) is exhausted: "
               f"spent ${spent_nano / NANO:.2f} of ${b.amount_usd:.2f}")
    if reserved_nano:
        message += f" (${reserved_nano / NANO:.2f} more reserved by requests in flight)"
    budget_refusals.labels(b.id).inc()
    error = BudgetExceeded(message)
    error.budget_id = b.id  # type: ignore[attr-defined]
    return error


def soft_limit_crossed(window: BudgetWindow, spent_nano: int) -> None:
    b = window.budget
    budget_soft_limits.labels(b.id).inc()
    log.warning(
        "budget soft limit reached", budget=b.id, scope=b.scope, scope_id=b.scope_id,
        period=b.period, period_start=window.start.isoformat(),
        spent_usd=to_usd(spent_nano), amount_usd=b.amount_usd, soft_limit=b.soft_limit,
    )


def spend_from_usage(db: Database) -> Seeder:
    """A seeder reading the cost in `usage_records` for the budget's scope since `since`."""
    from engine.governance.usage import UsageQuery

    query = UsageQuery(db)

    async def seed(budget: BudgetSpec, since: datetime) -> float:
        if budget.scope == "key":
            return await query.spent_since(key_id=budget.scope_id, since=since)
        return await query.spent_since(team_id=budget.scope_id, since=since)

    return seed


async def seed_nano(seed: Seeder | None, window: BudgetWindow) -> int:
    """The spend a window starts from; `ServiceUnavailable` if it cannot be read."""
    if seed is None:
        return 0
    try:
        return to_nano(await seed(window.budget, window.start))
    except Exception as error:
        log.error("cannot read recorded spend to seed a budget", budget=window.budget.id,
                  error=f"{type(error).__name__}: {error}"[:300])
        raise ServiceUnavailable(
            f"budget '{window.budget.id}' cannot be checked now: recorded spend is unreadable",
            retry_after=5,
        ) from error


# --- ledgers -----------------------------------------------------------------------------


class BudgetLedger(Protocol):
    """Spent and reserved amounts per budget window, in nano-dollars.

    `reserve` returns the name of the backend that holds the reservation, which
    `settle` and `release` are given back (a failover ledger has two).
    `settle` returns the windows whose soft limit this settlement crossed.
    """

    name: str

    async def reserve(self, windows: list[BudgetWindow], reservation_id: str,
                      estimate_nano: int) -> str: ...

    async def settle(self, windows: list[BudgetWindow], reservation_id: str,
                     actual_nano: int, *, backend: str) -> list[tuple[BudgetWindow, int]]: ...

    async def release(self, windows: list[BudgetWindow], reservation_id: str, *,
                      backend: str) -> None: ...

    async def usage(self, window: BudgetWindow) -> tuple[int, int]:
        """(spent, reserved) of the window, seeding it if untouched."""
        ...


@dataclass
class _Account:
    spent: int
    seed: int  # spent when seeded; spent - seed is what this ledger added
    end: datetime | None
    reserved: int = 0
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # id -> (amount, expiry)
    soft_warned: bool = False
    next_sweep: float = 0.0


class MemoryBudgetLedger:
    """Exact within one process: check-and-reserve runs with no await in between."""

    name = "memory"

    def __init__(self, seed: Seeder | None = None, *, lease_s: float = DEFAULT_LEASE_S):
        self.seed = seed
        self.lease_s = lease_s
        self._accounts: dict[str, _Account] = {}
        self._seeding: dict[str, asyncio.Lock] = {}
        self._touches = 0

    async def _account(self, window: BudgetWindow) -> _Account:
        account = self._accounts.get(window.key)
        if account is not None:
            return account
        lock = self._seeding.setdefault(window.key, asyncio.Lock())
        async with lock:
            account = self._accounts.get(window.key)
            if account is None:
                spent = await seed_nano(self.seed, window)
                account = self._accounts.setdefault(
                    window.key, _Account(spent=spent, seed=spent, end=window.end))
        self._seeding.pop(window.key, None)
        self._sweep_old()
        return account

    def _sweep_old(self) -> None:
        # Accounts of past periods with nothing in flight are dropped now and then.
        self._touches += 1
        if self._touches % 1024:
            return
        now = utcnow()
        for key in [k for k, a in self._accounts.items()
                    if a.end is not None and a.end < now - timedelta(days=1) and not a.holds]:
            del self._accounts[key]

    @staticmethod
    def _expire(account: _Account, now: float) -> None:
        if now < account.next_sweep:
            return
        account.next_sweep = now + 1.0
        for rid in [r for r, (_, expiry) in account.holds.items() if expiry <= now]:
            amount, _ = account.holds.pop(rid)
            account.reserved -= amount

    async def reserve(self, windows: list[BudgetWindow], reservation_id: str,
                      estimate_nano: int) -> str:
        accounts = [await self._account(w) for w in windows]
        # From here to the return there is no await: atomic within the event loop.
        now = time.monotonic()
        for window, account in zip(windows, accounts, strict=True):
            self._expire(account, now)
            if window.hard and account.spent + account.reserved >= window.amount_nano:
                raise exhausted(window, account.spent, account.reserved)
        for account in accounts:
            account.reserved += estimate_nano
            account.holds[reservation_id] = (estimate_nano, now + self.lease_s)
        return self.name

    async def settle(self, windows: list[BudgetWindow], reservation_id: str,
                     actual_nano: int, *, backend: str = "memory"
                     ) -> list[tuple[BudgetWindow, int]]:
        crossed = []
        for window in windows:
            account = await self._account(window)
            hold = account.holds.pop(reservation_id, None)
            if hold is not None:
                account.reserved -= hold[0]
            account.spent += actual_nano
            if not account.soft_warned and account.spent >= window.soft_nano:
                account.soft_warned = True
                crossed.append((window, account.spent))
        return crossed

    async def release(self, windows: list[BudgetWindow], reservation_id: str, *,
                      backend: str = "memory") -> None:
        for window in windows:
            account = self._accounts.get(window.key)
            if account is not None:
                hold = account.holds.pop(reservation_id, None)
                if hold is not None:
                    account.reserved -= hold[0]

    async def usage(self, window: BudgetWindow) -> tuple[int, int]:
        account = await self._account(window)
        self._expire(account, time.monotonic())
        return account.spent, account.reserved

    def drain(self) -> list[tuple[str, int]]:
        """Forget every account; return (window key, spend this ledger added) per account.

        A failover ledger pushes these to Redis when Redis is back, so spend made
        during an outage is not lost there.
        """
        deltas = [(k, a.spent - a.seed) for k, a in self._accounts.items() if a.spent > a.seed]
        self._accounts.clear()
        return deltas


# --- the guard ---------------------------------------------------------------------------


class Reservation:
    """An estimate held against budgets until the request's cost is known.

    Settle or cancel it exactly once (later calls do nothing); as an async
    context manager it cancels on exit unless settled.
    """

    def __init__(self, ledger: BudgetLedger | None, windows: list[BudgetWindow],
                 estimate_nano: int, backend: str = "none"):
        self.id = uuid.uuid4().hex
        self.ledger = ledger
        self.windows = windows
        self.estimate_nano = estimate_nano
        self.backend = backend
        self.done = False

    @property
    def estimate_usd(self) -> float:
        return to_usd(self.estimate_nano)

    @property
    def budgets(self) -> list[BudgetSpec]:
        return [w.budget for w in self.windows]

    async def settle(self, actual_usd: float) -> None:
        if self.done:
            return
        self.done = True
        if self.ledger is None or not self.windows:
            return
        crossed = await self.ledger.settle(self.windows, self.id, to_nano(actual_usd),
                                           backend=self.backend)
        for window, spent in crossed:
            soft_limit_crossed(window, spent)

    async def cancel(self) -> None:
        if self.done:
            return
        self.done = True
        if self.ledger is not None and self.windows:
            await self.ledger.release(self.windows, self.id, backend=self.backend)

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()


class BudgetGuard:
    """Chooses the budgets of a request, estimates its cost and reserves it."""

    def __init__(self, ledger: BudgetLedger, *, default_max_tokens: int = DEFAULT_MAX_TOKENS,
                 clock: Callable[[], datetime] = utcnow):
        self.ledger = ledger
        self.default_max_tokens = default_max_tokens
        self.clock = clock

    @staticmethod
    def applicable(key_id: str | None, team_id: str | None,
                   budgets: list[BudgetSpec]) -> list[BudgetSpec]:
        """The enabled budgets of the key and of its team."""
        return [
            b for b in budgets
            if b.enabled and (
                (b.scope == "key" and key_id is not None and b.scope_id == key_id)
                or (b.scope == "team" and team_id is not None and b.scope_id == team_id)
            )
        ]

    def estimate_cost(self, pricing: Pricing | None, prompt_tokens: int,
                      max_tokens: int | None, *, context_window: int | None = None) -> float:
        """An upper bound of a request's cost in USD.

        Without `max_tokens`, the completion is assumed to be `default_max_tokens`
        (4096) long, or the room left in the context window if that is smaller.
        """
        if pricing is None:
            return 0.0
        completion = max_tokens
        if completion is None:
            completion = self.default_max_tokens
            if context_window is not None:
                completion = max(0, min(completion, context_window - prompt_tokens))
        return (prompt_tokens * pricing.input_cost_per_token
                + completion * pricing.output_cost_per_token)

    def windows(self, budgets: list[BudgetSpec]) -> list[BudgetWindow]:
        now = self.clock()
        return [BudgetWindow.of(b, now) for b in budgets]

    async def reserve(self, budgets: list[BudgetSpec], estimate_usd: float) -> Reservation:
        """Hold `estimate_usd` against every budget, or raise `BudgetExceeded`."""
        windows = self.windows(budgets)
        estimate = to_nano(estimate_usd)
        if not windows:
            return Reservation(None, [], estimate)
        reservation = Reservation(self.ledger, windows, estimate)
        reservation.backend = await self.ledger.reserve(windows, reservation.id, estimate)
        return reservation

    async def status(self, budget: BudgetSpec) -> dict[str, Any]:
        """Where a budget stands in its current period."""
        window = BudgetWindow.of(budget, self.clock())
        spent, reserved = await self.ledger.usage(window)
        amount = window.amount_nano
        if spent >= amount or (budget.hard_limit and spent + reserved >= amount):
            state = "exhausted"
        elif spent >= window.soft_nano:
            state = "soft_limit"
        else:
            state = "ok"
        return {
            "object": "budget_status",
            "id": budget.id,
            "scope": budget.scope,
            "scope_id": budget.scope_id,
            "period": budget.period,
            "enabled": budget.enabled,
            "hard_limit": budget.hard_limit,
            "amount_usd": budget.amount_usd,
            "spent_usd": to_usd(spent),
            "reserved_usd": to_usd(reserved),
            "remaining_usd": to_usd(max(0, amount - spent - reserved)),
            "percent": round(100 * spent / amount, 2) if amount else 0.0,
            "state": state,
            "period_start": window.start,
            "period_end": window.end,
        }
