"""Models (an upstream LLM or embedding model, with deployments) and chains."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, HttpUrl, model_validator

from engine.schemas.common import Alias, ResourceId, Strict

Provider = Literal["openai", "openai_compatible", "anthropic", "azure_openai", "bedrock"]
Routing = Literal["weighted", "round_robin", "least_in_flight", "latency"]


class Timeouts(Strict):
    connect_ms: int = Field(5_000, ge=1, le=600_000)
    read_ms: int = Field(120_000, ge=1, le=3_600_000, description="Longest wait between bytes")
    total_ms: int = Field(600_000, ge=1, le=3_600_000, description="Whole request")


class CircuitBreakerPolicy(Strict):
    failure_threshold: int = Field(5, ge=1, le=1000, description="Failures that open it")
    window_s: float = Field(60, gt=0, le=3600, description="Window the failures are counted in")
    cooldown_s: float = Field(30, gt=0, le=3600, description="Open time before a probe")


class Endpoint(Strict):
    """Where and how to reach an upstream; a deployment overrides the model's."""

    provider: Provider | None = None
    model: str | None = Field(
        None, min_length=1, max_length=256,
        description="Upstream model name (Azure: deployment name; Bedrock: model id)",
    )
    base_url: HttpUrl | None = None
    credentials: str | None = Field(
        None,
        max_length=512,
        description="Secret reference: env:NAME, file:/path, vault:mount/path#field, "
        "aws:secret-id#field",
    )
    api_version: str | None = Field(None, max_length=32, description="Azure OpenAI api-version")
    region: str | None = Field(None, max_length=32, description="AWS region (Bedrock)")


class Deployment(Endpoint):
    id: ResourceId
    weight: float = Field(1.0, gt=0, le=1_000_000)
    max_concurrency: int | None = Field(None, ge=1, le=100_000)
    max_queue: int = Field(100, ge=0, le=100_000)
    timeouts: Timeouts | None = None
    enabled: bool = True


class ModelDefaults(Strict):
    """Parameters applied when the request does not set them."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    stop: list[str] | None = Field(None, max_length=4)
    seed: int | None = None


class Pricing(Strict):
    input_cost_per_token: float = Field(0.0, ge=0, description="USD per prompt token")
    output_cost_per_token: float = Field(0.0, ge=0, description="USD per completion token")


class ModelSpec(Endpoint):
    id: ResourceId
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    type: Literal["chat", "embedding"] = "chat"
    provider: Provider  # type: ignore[assignment]  (required on the model)
    model: str = Field(min_length=1, max_length=256)  # type: ignore[assignment]
    aliases: list[Alias] = Field(default_factory=list, max_length=50)
    defaults: ModelDefaults = Field(default_factory=ModelDefaults)
    pricing: Pricing = Field(default_factory=Pricing)
    context_window: int | None = Field(None, ge=1)
    dimensions: int | None = Field(None, ge=1, le=65_536, description="Embedding size")
    max_retries: int = Field(2, ge=0, le=10, description="Retries when used directly")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_concurrency: int | None = Field(None, ge=1, le=100_000)
    max_queue: int = Field(100, ge=0, le=100_000)
    circuit_breaker: CircuitBreakerPolicy = Field(default_factory=CircuitBreakerPolicy)
    routing: Routing = "weighted"
    deployments: list[Deployment] = Field(default_factory=list, max_length=100)
    enabled: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if len(set(self.aliases)) != len(self.aliases):
            raise ValueError("aliases must be unique")
        if self.id in self.aliases:
            raise ValueError("an alias must differ from the model id")
        ids = [d.id for d in self.deployments]
        if len(set(ids)) != len(ids):
            raise ValueError("deployment ids must be unique within a model")
        for endpoint in self.endpoints():
            _check_endpoint(endpoint, self.type)
        return self

    def endpoints(self) -> list[ResolvedDeployment]:
        """The deployments with the model's settings filled in (the model itself if none)."""
        if not self.deployments:
            return [self._resolve(None)]
        return [self._resolve(d) for d in self.deployments]

    def _resolve(self, deployment: Deployment | None) -> ResolvedDeployment:
        d = deployment
        return ResolvedDeployment(
            key=f"{self.id}/{d.id}" if d else self.id,
            model_id=self.id,
            provider=(d and d.provider) or self.provider,
            model=(d and d.model) or self.model,
            base_url=str((d and d.base_url) or self.base_url or "") or None,
            credentials=(d and d.credentials) or self.credentials,
            api_version=(d and d.api_version) or self.api_version,
            region=(d and d.region) or self.region,
            weight=d.weight if d else 1.0,
            max_concurrency=(d and d.max_concurrency) or self.max_concurrency,
            max_queue=d.max_queue if d else self.max_queue,
            timeouts=(d and d.timeouts) or self.timeouts,
            enabled=d.enabled if d else True,
        )


class ResolvedDeployment(Strict):
    """Everything needed to call one upstream, after model defaults are applied."""

    key: str
    model_id: str
    provider: Provider
    model: str
    base_url: str | None
    credentials: str | None
    api_version: str | None
    region: str | None
    weight: float
    max_concurrency: int | None
    max_queue: int
    timeouts: Timeouts
    enabled: bool


def _check_endpoint(endpoint: ResolvedDeployment, kind: str) -> None:
    where = f"deployment '{endpoint.key}'"
    if endpoint.provider in ("openai_compatible", "azure_openai") and not endpoint.base_url:
        raise ValueError(f"{where}: provider {endpoint.provider} needs base_url")
    if endpoint.provider == "azure_openai" and not endpoint.api_version:
        raise ValueError(f"{where}: provider azure_openai needs api_version")
    if kind == "embedding" and endpoint.provider == "anthropic":
        raise ValueError(f"{where}: Anthropic offers no embedding models")


class ChainStep(Strict):
    model: str = Field(min_length=1, max_length=128, description="A model id or alias")
    max_retries: int = Field(2, ge=0, le=10)
    max_latency_ms: int | None = Field(
        None, ge=1, le=3_600_000,
        description="Give up on this step (and fall back) if it has not answered in time; "
        "for streams, the time to the first token",
    )
    on_failure: Literal["fallback", "fail"] = Field(
        "fallback", description="After the last retry: try the next step, or fail the request"
    )


class RetryPolicy(Strict):
    base_delay_ms: int = Field(200, ge=0, le=60_000)
    max_delay_ms: int = Field(5_000, ge=0, le=300_000, description="Cap of one backoff")
    max_retry_after_ms: int = Field(
        30_000, ge=0, le=600_000,
        description="Longest Retry-After honoured; a longer one skips to the fallback",
    )


class ChainSpec(Strict):
    id: ResourceId
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    aliases: list[Alias] = Field(default_factory=list, max_length=50)
    steps: list[ChainStep] = Field(min_length=1, max_length=20)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    enabled: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> ChainSpec:
        if len(set(self.aliases)) != len(self.aliases):
            raise ValueError("aliases must be unique")
        if self.id in self.aliases:
            raise ValueError("an alias must differ from the chain id")
        return self
