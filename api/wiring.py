"""Build the gateway's parts from settings: shared state, secrets, providers, catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from connectors.llm.anthropic import AnthropicProvider
from connectors.llm.bedrock import BedrockProvider
from connectors.llm.http import Upstreams
from connectors.llm.openai import AzureOpenAIProvider, OpenAIProvider
from connectors.secrets.env import EnvSource
from connectors.secrets.file import FileSource
from connectors.state.failover import FailoverState
from connectors.state.failover_ratelimit import FailoverRateLimiter
from connectors.state.memory import MemoryState
from connectors.state.redis_ratelimit import RedisRateLimiter
from connectors.state.redis_state import RedisState
from engine.catalog import Catalog
from engine.gateway.breaker import CircuitBreakers
from engine.gateway.executor import Gateway
from engine.gateway.kinds import gateway_kinds
from engine.gateway.providers import ChatProvider
from engine.gateway.routing import Router
from engine.governance.audit import AuditLog
from engine.governance.budgets import (
    BudgetGuard,
    BudgetLedger,
    MemoryBudgetLedger,
    spend_from_usage,
)
from engine.governance.keys import Authenticator, KeyStore
from engine.governance.pipeline import Governance
from engine.governance.ratelimit import MemoryRateLimiter, RateLimiter
from engine.governance.usage import UsageQuery, UsageRecorder
from engine.registry import Registry
from engine.secrets import Secrets, SecretSource
from engine.settings import Settings
from engine.state import SharedState
from engine.store import Database, ResourceStore


@dataclass
class GovernanceParts:
    keys: KeyStore
    audit: AuditLog
    authenticator: Authenticator
    limiter: RateLimiter
    budgets: BudgetGuard
    usage: UsageRecorder
    usage_query: UsageQuery
    governance: Governance

    async def aclose(self) -> None:
        await self.governance.drain()
        await self.usage.close()
        await self.authenticator.flush_last_used()


@dataclass
class GatewayParts:
    state: SharedState
    secrets: Secrets
    providers: dict[str, ChatProvider]
    catalog: Catalog
    registry: Registry
    breakers: CircuitBreakers
    router: Router
    gateway: Gateway

    async def aclose(self) -> None:
        await self.catalog.stop()
        await self.secrets.aclose()
        closed = set()
        for provider in self.providers.values():
            if id(provider) not in closed:
                closed.add(id(provider))
                await provider.aclose()


def shared_state(redis: Redis | None) -> SharedState:
    return FailoverState(RedisState(redis)) if redis is not None else MemoryState()


def secret_sources(settings: Settings) -> list[SecretSource]:
    sources: list[SecretSource] = [EnvSource(), FileSource(settings.secrets_file_root)]
    if settings.vault_addr:
        from connectors.secrets.vault import VaultSource

        token = settings.vault_token.get_secret_value() if settings.vault_token else ""
        sources.append(VaultSource(settings.vault_addr, token,
                                   namespace=settings.vault_namespace))
    if settings.aws_region:
        from connectors.secrets.aws import AwsSecretsSource

        sources.append(AwsSecretsSource(settings.aws_region,
                                        endpoint_url=settings.aws_endpoint_url))
    return sources


def providers() -> dict[str, ChatProvider]:
    upstreams = Upstreams()
    openai = OpenAIProvider(upstreams)
    found: dict[str, ChatProvider] = {
        "openai": openai,
        "openai_compatible": openai,
        "azure_openai": AzureOpenAIProvider(upstreams),
        "anthropic": AnthropicProvider(upstreams),
    }
    found["bedrock"] = BedrockProvider()
    return found


def build_governance(db: Database, catalog: Catalog, redis: Redis | None) -> GovernanceParts:
    keys = KeyStore(db)
    authenticator = Authenticator(keys)
    limiter: RateLimiter = MemoryRateLimiter()
    ledger: BudgetLedger = MemoryBudgetLedger(spend_from_usage(db))
    if redis is not None:
        limiter = FailoverRateLimiter(RedisRateLimiter(redis), MemoryRateLimiter())
        ledger = redis_budget_ledger(redis, spend_from_usage(db))
    budgets = BudgetGuard(ledger)
    usage = UsageRecorder(db)
    return GovernanceParts(
        keys=keys, audit=AuditLog(db), authenticator=authenticator, limiter=limiter,
        budgets=budgets, usage=usage, usage_query=UsageQuery(db),
        governance=Governance(authenticator=authenticator, limiter=limiter, catalog=catalog,
                              budgets=budgets, usage=usage),
    )


def build_gateway(settings: Settings, resources: ResourceStore,
                  redis: Redis | None, audit: AuditLog | None = None) -> GatewayParts:
    state = shared_state(redis)
    secrets = Secrets(secret_sources(settings), ttl_s=settings.secrets_ttl_s)
    catalog = Catalog(resources, refresh_s=settings.catalog_refresh_s)
    registry = Registry(resources, gateway_kinds(secrets), on_change=catalog.load, audit=audit)
    breakers = CircuitBreakers(state)
    router = Router(state)
    found = providers()
    return GatewayParts(
        state=state, secrets=secrets, providers=found, catalog=catalog, registry=registry,
        breakers=breakers, router=router,
        gateway=Gateway(catalog, found, secrets, breakers, router),
    )


def redis_budget_ledger(redis: Redis, seed: Any) -> BudgetLedger:
    from connectors.state.redis_budgets import FailoverBudgetLedger, RedisBudgetLedger

    return FailoverBudgetLedger(RedisBudgetLedger(redis, seed), MemoryBudgetLedger(seed))
