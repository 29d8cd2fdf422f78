"""Budget ledgers shared through Redis, and failover to in-process ledgers.

Each budget window (budget, scope, period start) is a hash `<prefix><window>:h`
with `spent`, `reserved` (integer nano-dollars), `soft` (the soft-limit alert
was logged) and one `r:<reservation id>` field per reservation in flight, plus
a sorted set `<prefix><window>:z` of reservation ids scored by lease expiry.
Reserving across several budgets is one Lua script, so it is atomic across
replicas: it sweeps expired leases, checks every hard budget for
`spent + reserved < amount`, and only if all pass adds the estimate to each.
Keys live until the period ends plus a margin (refreshed on every touch).

A window's hash is created on first touch from the seeder (spend recorded in
`usage_records` since the period start). The prefix carries a hash tag, so all
budget keys share one Redis Cluster slot, as multi-key scripts require.

`FailoverBudgetLedger` uses Redis and, while Redis is unreachable, an
in-process ledger (seeded from the database too), like
`connectors.state.failover.FailoverState`: degraded mode is logged once and
shown by the `headrace_degraded{component="redis_budgets"}` gauge. When Redis
answers again, the spend settled in process during the outage is added to the
Redis accounts that still exist (those that do not are reseeded from the
database, which has it).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis

from connectors.state.outage import OUTAGE_ERRORS, Outage
from engine.governance.budgets import (
    DEFAULT_LEASE_S,
    BudgetWindow,
    MemoryBudgetLedger,
    Seeder,
    exhausted,
    seed_nano,
)
from engine.logs import get_logger
from engine.store.types import utcnow

log = get_logger("headrace.budgets")
T = TypeVar("T")

# Drop reservations whose lease ran out from hash h / zset z (as of `now`).
_SWEEP = """
local function sweep(h, z, now)
  local stale = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, id in ipairs(stale) do
    local amount = redis.call('HGET', h, 'r:' .. id)
    if amount then
      if amount ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. amount) end
      redis.call('HDEL', h, 'r:' .. id)
    end
  end
  if #stale > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
end
"""

# KEYS: h1, z1, h2, z2, ...  ARGV: now_ms, lease_expiry_ms, reservation id, estimate,
# then per budget: amount, hard (1|0), ttl_ms.
# -> {'ok'} | {'seed', i, ...} (windows never touched) | {'refused', i, spent, reserved}
_RESERVE = _SWEEP + """
local n = #KEYS / 2
local missing = {'seed'}
for i = 1, n do
  if redis.call('EXISTS', KEYS[2*i-1]) == 0 then table.insert(missing, i) end
end
if #missing > 1 then return missing end
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  sweep(h, z, ARGV[1])
  local base = 4 + (i - 1) * 3
  local spent = tonumber(redis.call('HGET', h, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', h, 'reserved') or '0')
  if ARGV[base + 2] == '1' and spent + reserved >= tonumber(ARGV[base + 1]) then
    return {'refused', i, spent, reserved}
  end
end
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  local ttl = ARGV[4 + (i - 1) * 3 + 3]
  redis.call('HINCRBY', h, 'reserved', ARGV[4])
  redis.call('HSET', h, 'r:' .. ARGV[3], ARGV[4])
  redis.call('ZADD', z, ARGV[2], ARGV[3])
  redis.call('PEXPIRE', h, ttl)
  redis.call('PEXPIRE', z, ttl)
end
return {'ok'}
"""

# Release reservation ARGV[1] and, when ARGV[2] is not '', add ARGV[2] to spent.
# Per budget: ARGV soft threshold, ttl_ms. -> {i, spent, ...} for soft limits crossed now.
_SETTLE = """
local rid, actual = ARGV[1], ARGV[2]
local crossed = {}
for i = 1, #KEYS / 2 do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  local amount = redis.call('HGET', h, 'r:' .. rid)
  if amount then
    if amount ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. amount) end
    redis.call('HDEL', h, 'r:' .. rid)
  end
  redis.call('ZREM', z, rid)
  -- A window that is gone is reseeded from the database, which has this cost.
  if actual ~= '' and redis.call('EXISTS', h) == 1 then
    local spent = redis.call('HINCRBY', h, 'spent', actual)
    local ttl = ARGV[2 + 2*i]
    redis.call('PEXPIRE', h, ttl)
    if spent >= tonumber(ARGV[1 + 2*i]) and redis.call('HSETNX', h, 'soft', '1') == 1 then
      table.insert(crossed, i)
      table.insert(crossed, spent)
    end
  end
end
return crossed
"""

# KEYS: h, z  ARGV: now_ms -> {exists, spent, reserved}
_USAGE = _SWEEP + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 0} end
sweep(KEYS[1], KEYS[2], ARGV[1])
return {1, tonumber(redis.call('HGET', KEYS[1], 'spent') or '0'),
        tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')}
"""

# KEYS: h1, h2, ...  ARGV: deltas. Adds spend to windows that exist.
_ADD_SPENT = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('HINCRBY', KEYS[i], 'spent', ARGV[i]) end
end
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBudgetLedger:
    name = "redis"

    def __init__(self, client: Redis, seed: Seeder | None = None, *,
                 prefix: str = "headrace:{budgets}:", lease_s: float = DEFAULT_LEASE_S,
                 margin_s: float = 86400.0):
        self.client = client
        self.seed = seed
        self.prefix = prefix
        self.lease_s = lease_s
        self.margin_s = margin_s
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self._usage = client.register_script(_USAGE)
        self._add_spent = client.register_script(_ADD_SPENT)

    def _hash(self, window_key: str) -> str:
        return f"{self.prefix}{window_key}:h"

    def _keys(self, windows: list[BudgetWindow]) -> list[str]:
        keys = []
        for window in windows:
            keys += [self._hash(window.key), f"{self.prefix}{window.key}:z"]
        return keys

    def _ttl_ms(self, window: BudgetWindow) -> str:
        return str(int(window.ttl_s(self.margin_s, utcnow()) * 1000))

    async def _seed(self, windows: list[BudgetWindow]) -> None:
        for window in windows:
            spent = await seed_nano(self.seed, window)
            key = self._hash(window.key)
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hsetnx(key, "spent", spent)
                pipe.hsetnx(key, "reserved", 0)
                pipe.pexpire(key, int(self._ttl_ms(window)))
                await pipe.execute()

    async def reserve(self, windows: list[BudgetWindow], reservation_id: str,
                      estimate_nano: int) -> str:
        keys = self._keys(windows)
        for _ in range(5):
            now_ms = int(time.time() * 1000)
            args = [str(now_ms), str(now_ms + int(self.lease_s * 1000)), reservation_id,
                    str(estimate_nano)]
            for window in windows:
                args += [str(window.amount_nano), "1" if window.hard else "0",
                         self._ttl_ms(window)]
            result = await self._reserve(keys=keys, args=args)
            status = _text(result[0])
            if status == "ok":
                return self.name
            if status == "refused":
                window = windows[int(result[1]) - 1]
                raise exhausted(window, int(result[2]), int(result[3]))
            await self._seed([windows[int(i) - 1] for i in result[1:]])
        raise RuntimeError("budget windows vanished while being seeded")

    async def _finish(self, windows: list[BudgetWindow], reservation_id: str,
                      actual: str) -> list[tuple[BudgetWindow, int]]:
        args = [reservation_id, actual]
        for window in windows:
            args += [str(window.soft_nano), self._ttl_ms(window)]
        result = await self._settle(keys=self._keys(windows), args=args)
        return [(windows[int(result[j]) - 1], int(result[j + 1]))
                for j in range(0, len(result), 2)]

    async def settle(self, windows: list[BudgetWindow], reservation_id: str,
                     actual_nano: int, *, backend: str = "redis"
                     ) -> list[tuple[BudgetWindow, int]]:
        return await self._finish(windows, reservation_id, str(actual_nano))

    async def release(self, windows: list[BudgetWindow], reservation_id: str, *,
                      backend: str = "redis") -> None:
        await self._finish(windows, reservation_id, "")

    async def usage(self, window: BudgetWindow) -> tuple[int, int]:
        keys = self._keys([window])
        for _ in range(5):
            exists, spent, reserved = await self._usage(
                keys=keys, args=[str(int(time.time() * 1000))])
            if int(exists):
                return int(spent), int(reserved)
            await self._seed([window])
        raise RuntimeError("budget window vanished while being seeded")

    async def add_spent(self, deltas: list[tuple[str, int]]) -> None:
        """Add spend (by window key) to the windows that exist in Redis."""
        if deltas:
            await self._add_spent(keys=[self._hash(k) for k, _ in deltas],
                                  args=[str(d) for _, d in deltas])


class FailoverBudgetLedger:
    """Redis first; an in-process ledger while Redis is unreachable."""

    name = "redis"

    def __init__(self, redis: RedisBudgetLedger, memory: MemoryBudgetLedger | None = None, *,
                 retry_s: float = 5.0):
        self.redis = redis
        self.memory = memory or MemoryBudgetLedger(redis.seed, lease_s=redis.lease_s)
        self.outage = Outage(component="redis_budgets", retry_s=retry_s, what="budgets",
                             logger=log)
        self._unmerged: list[tuple[str, int]] = []  # outage spend not yet added to Redis

    @property
    def degraded(self) -> bool:
        return self.outage.degraded

    @property
    def last_error(self) -> str | None:
        return self.outage.last_error

    async def _call(self, primary: Callable[[], Awaitable[T]],
                    fallback: Callable[[], Awaitable[T]]) -> T:
        if self.outage.degraded:
            if self.outage.active():
                return await fallback()
            try:
                await self._merge_back()
            except OUTAGE_ERRORS as error:
                self.outage.down(error)
                return await fallback()
        try:
            return await primary()
        except OUTAGE_ERRORS as error:
            self.outage.down(error)
            return await fallback()

    async def _merge_back(self) -> None:
        """Redis may be back: add the spend settled in process meanwhile, then use Redis."""
        self._unmerged += self.memory.drain()
        await self.redis.add_spent(self._unmerged)
        merged, self._unmerged = len(self._unmerged), []
        log.info("budget spend made during the outage added to Redis", windows=merged)
        self.outage.up()

    async def reserve(self, windows: list[BudgetWindow], reservation_id: str,
                      estimate_nano: int) -> str:
        return await self._call(
            lambda: self.redis.reserve(windows, reservation_id, estimate_nano),
            lambda: self.memory.reserve(windows, reservation_id, estimate_nano),
        )

    async def settle(self, windows: list[BudgetWindow], reservation_id: str,
                     actual_nano: int, *, backend: str) -> list[tuple[BudgetWindow, int]]:
        if backend == "memory":
            if self.degraded:
                return await self.memory.settle(windows, reservation_id, actual_nano)
            # Reserved during an outage that has ended: the cost belongs in Redis.
            await self.memory.release(windows, reservation_id)
        try:
            return await self.redis.settle(windows, reservation_id, actual_nano)
        except OUTAGE_ERRORS as error:
            self.outage.down(error)
            # The Redis hold expires with its lease; the cost is counted here meanwhile.
            return await self.memory.settle(windows, reservation_id, actual_nano)

    async def release(self, windows: list[BudgetWindow], reservation_id: str, *,
                      backend: str) -> None:
        if backend == "memory":
            await self.memory.release(windows, reservation_id)
            return
        try:
            await self.redis.release(windows, reservation_id)
        except OUTAGE_ERRORS as error:
            self.outage.down(error)  # the hold expires with its lease

    async def usage(self, window: BudgetWindow) -> tuple[int, int]:
        return await self._call(lambda: self.redis.usage(window),
                                lambda: self.memory.usage(window))
