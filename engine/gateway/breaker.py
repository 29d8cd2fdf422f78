"""Circuit breakers per deployment, on shared state so replicas agree.

Closed: failures are counted in a window that starts at the first failure;
`failure_threshold` of them open the circuit. Open: calls are refused for
`cooldown_s`. Half-open: when the cooldown ends, one caller gets the probe
slot; its success closes the circuit, its failure opens it again.

Keys per deployment: `fails` (counter with the window as TTL), `open` (flag
with the cooldown as TTL), `tripped` (set while not closed; open expiring
while tripped means half-open), `probe` (the half-open slot).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine import metrics
from engine.logs import get_logger
from engine.schemas.models import CircuitBreakerPolicy
from engine.state import SharedState

log = get_logger("headrace.breaker")

TRIPPED_TTL_S = 86_400.0


class CircuitState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to call a deployment; `probe` is set for the half-open probe call."""

    deployment: str
    probe: bool


class CircuitBreakers:
    def __init__(self, state: SharedState, *, probe_ttl_s: float = 60.0):
        self.state = state
        self.probe_ttl_s = probe_ttl_s

    @staticmethod
    def _keys(deployment: str) -> tuple[str, str, str, str]:
        base = f"cb:{deployment}:"
        return base + "fails", base + "open", base + "tripped", base + "probe"

    async def state_of(self, deployment: str) -> CircuitState:
        _, open_key, tripped_key, _ = self._keys(deployment)
        is_open, tripped = await self.state.get_many([open_key, tripped_key])
        if is_open:
            return CircuitState.open
        return CircuitState.half_open if tripped else CircuitState.closed

    async def allow(self, deployment: str) -> Permit | None:
        """A permit to call, or None while the circuit is open (or another caller probes)."""
        _, open_key, tripped_key, probe_key = self._keys(deployment)
        is_open, tripped = await self.state.get_many([open_key, tripped_key])
        if is_open:
            return None
        if not tripped:
            return Permit(deployment, probe=False)
        if await self.state.set(probe_key, "1", ttl_s=self.probe_ttl_s, nx=True):
            return Permit(deployment, probe=True)
        return None

    async def success(self, permit: Permit) -> None:
        if permit.probe:
            fails, _, tripped, probe = self._keys(permit.deployment)
            await self.state.delete(fails, tripped, probe)
            metrics.circuit_state.labels(permit.deployment).set(0)
            log.info("circuit closed", deployment=permit.deployment)

    async def failure(self, permit: Permit, policy: CircuitBreakerPolicy) -> None:
        fails, open_key, tripped, probe = self._keys(permit.deployment)
        if permit.probe:
            await self.state.set(open_key, "1", ttl_s=policy.cooldown_s)
            await self.state.delete(probe)
            metrics.circuit_state.labels(permit.deployment).set(1)
            log.warning("circuit re-opened after a failed probe", deployment=permit.deployment)
            return
        count = await self.state.incr(fails, ttl_s=policy.window_s)
        if count >= policy.failure_threshold:
            await self.state.set(open_key, "1", ttl_s=policy.cooldown_s)
            await self.state.set(tripped, "1", ttl_s=TRIPPED_TTL_S)
            await self.state.delete(fails)
            metrics.circuit_state.labels(permit.deployment).set(1)
            metrics.circuit_opened.labels(permit.deployment).inc()
            log.warning(
                "circuit opened", deployment=permit.deployment, failures=count,
                cooldown_s=policy.cooldown_s,
            )

    async def release(self, permit: Permit) -> None:
        """Give back an unused probe slot (the call never reached the upstream)."""
        if permit.probe:
            await self.state.delete(self._keys(permit.deployment)[3])
