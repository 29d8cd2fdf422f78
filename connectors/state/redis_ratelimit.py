"""Rate limits in Redis, shared by every replica.

One Lua script per `acquire` reads every counter of every subject, refuses if
any limit would be exceeded, and otherwise counts the request and takes the
concurrency slots: atomic, one round trip, all-or-nothing. Time is Redis's
(`TIME`), so replicas with skewed clocks agree on windows.

Layout (prefix "headrace:"), every key named in KEYS:
- `rl:<subject>:rpm|rph|rpd|tpm`: a hash {w: window index, p: previous count,
  c: current count}, expiring two windows after its last write;
- `rl:<subject>:conc`: a sorted set of in-flight admissions scored by when
  they lapse (`slot_ttl_s`, 10 minutes by default): a replica that dies with
  slots held frees them after that, however busy the subject stays.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence

from redis.asyncio import Redis

from connectors.state.outage import OUTAGE_ERRORS
from engine.governance.ratelimit import (
    NO_LIMITS,
    WINDOWS,
    Admission,
    Limit,
    Subject,
    Usage,
    has_limits,
    plan,
    rate_headers,
    refusal,
    token_limits,
)
from engine.logs import get_logger

log = get_logger("headrace.ratelimit")

# The time in ms: ARGV[1] when given (tests), else the server's.
_NOW = """
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local function counts(key, index)
  local h = redis.call('HMGET', key, 'w', 'p', 'c')
  local w = tonumber(h[1])
  if w == index then return tonumber(h[2]) or 0, tonumber(h[3]) or 0 end
  if w == index - 1 then return tonumber(h[3]) or 0, 0 end
  return 0, 0
end
"""

# ARGV: now | slot ttl ms | admission id | per key: kind (r, t, c), limit, window ms.
# Returns: admitted (1/0), now, then per key: previous, current, refused (1/0).
_ACQUIRE = _NOW + """
local ttl = tonumber(ARGV[2])
local id = ARGV[3]
local n = #KEYS
local kinds, limits, lengths, indexes, prevs, curs, bads = {}, {}, {}, {}, {}, {}, {}
local refused = false
for i = 1, n do
  local key, base = KEYS[i], 3 + (i - 1) * 3
  local kind, limit, len = ARGV[base + 1], tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local prev, cur, bad = 0, 0, 0
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    cur = redis.call('ZCARD', key)
    if cur >= limit then bad = 1 end
  else
    local index = math.floor(now / len)
    local frac = now / len - index
    prev, cur = counts(key, index)
    indexes[i] = index
    local est = prev * (1 - frac) + cur
    if kind == 'r' then
      if est + 1 > limit then bad = 1 end
    elseif est >= limit then
      bad = 1
    end
  end
  kinds[i], limits[i], lengths[i], prevs[i], curs[i], bads[i] = kind, limit, len, prev, cur, bad
  if bad == 1 then refused = true end
end
if not refused then
  for i = 1, n do
    if kinds[i] == 'r' then
      curs[i] = curs[i] + 1
      redis.call('HSET', KEYS[i], 'w', indexes[i], 'p', prevs[i], 'c', curs[i])
      redis.call('PEXPIRE', KEYS[i], 2 * lengths[i])
    elseif kinds[i] == 'c' then
      redis.call('ZADD', KEYS[i], now + ttl, id)
      redis.call('PEXPIRE', KEYS[i], ttl)
      curs[i] = curs[i] + 1
    end
  end
end
local out = {refused and 0 or 1, tostring(now)}
for i = 1, n do
  out[#out + 1] = tostring(prevs[i])
  out[#out + 1] = tostring(curs[i])
  out[#out + 1] = bads[i]
end
return out
"""

# ARGV: now | tokens | per key: window ms.
_CHARGE = _NOW + """
local tokens = tonumber(ARGV[2])
for i = 1, #KEYS do
  local len = tonumber(ARGV[2 + i])
  local index = math.floor(now / len)
  local prev, cur = counts(KEYS[i], index)
  redis.call('HSET', KEYS[i], 'w', index, 'p', prev, 'c', cur + tokens)
  redis.call('PEXPIRE', KEYS[i], 2 * len)
end
return 1
"""

_KIND_CODE = {"requests": "r", "tokens": "t", "concurrent": "c"}


class RedisRateLimiter:
    """`windows` overrides window lengths in seconds; `clock` (tests only) replaces
    Redis's time with the caller's, in seconds."""

    name = "redis"

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "headrace:",
        windows: Mapping[str, float] | None = None,
        slot_ttl_s: float = 600.0,
        clock: Callable[[], float] | None = None,
    ):
        self.client = client
        self.prefix = prefix
        self.windows = {**WINDOWS, **(windows or {})}
        self.slot_ttl_ms = int(slot_ttl_s * 1000)
        self.clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._charge = client.register_script(_CHARGE)

    def key(self, limit: Limit) -> str:
        return f"{self.prefix}rl:{limit.subject}:{limit.suffix}"

    def _now_arg(self) -> str:
        return "" if self.clock is None else repr(self.clock() * 1000)

    async def acquire(self, subjects: Sequence[Subject]) -> Admission:
        if not has_limits(subjects):
            return NO_LIMITS
        limits = plan(subjects, self.windows)
        admission_id = uuid.uuid4().hex
        args: list[str | int] = [self._now_arg(), self.slot_ttl_ms, admission_id]
        for limit in limits:
            args += [_KIND_CODE[limit.kind], limit.limit, _ms(limit.length)]
        reply = await self._acquire(keys=[self.key(lim) for lim in limits], args=args)
        admitted, now_ms = int(reply[0]), float(reply[1])
        usages: list[Usage] = []
        refused: list[Usage] = []
        for i, limit in enumerate(limits):
            previous, current, bad = reply[2 + 3 * i: 5 + 3 * i]
            elapsed = 0.0
            if limit.kind != "concurrent":
                length_ms = _ms(limit.length)
                position = now_ms / length_ms
                elapsed = position - int(position // 1)
            usage = Usage(limit, float(previous), float(current), elapsed)
            usages.append(usage)
            if int(bad):
                refused.append(usage)
        if not admitted:
            raise refusal(refused, usages)
        headers = rate_headers(usages)
        slots = [self.key(lim) for lim in limits if lim.kind == "concurrent"]
        if not slots:
            return Admission(headers)

        async def release() -> None:
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for key in slots:
                        pipe.zrem(key, admission_id)
                    await pipe.execute()
            except OUTAGE_ERRORS as error:
                # The slots lapse on their own after slot_ttl_s.
                log.warning("could not release rate-limit slots in redis",
                            error=f"{type(error).__name__}: {error}"[:300])

        return Admission(headers, release)

    async def charge_tokens(self, subjects: Sequence[Subject], tokens: int) -> None:
        if tokens <= 0 or not has_limits(subjects):
            return
        limits = token_limits(subjects, self.windows)
        if not limits:
            return
        await self._charge(
            keys=[self.key(lim) for lim in limits],
            args=[self._now_arg(), int(tokens), *(_ms(lim.length) for lim in limits)],
        )


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
