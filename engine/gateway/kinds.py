"""The gateway's admin resources (models, chains, prompts) and their rules
across resources: a chain names existing models; a model or alias a chain
uses cannot disappear; credentials use a configured secret scheme."""

from __future__ import annotations

from pydantic import BaseModel

from engine.errors import Conflict, InvalidRequest
from engine.registry import Kind, Registry
from engine.schemas.models import ChainSpec, ModelSpec
from engine.schemas.prompts import PromptSpec
from engine.secrets import Secrets


async def _chains_using(registry: Registry, model_id: str, keep: set[str]) -> list[str]:
    """Chains with a step that resolves to `model_id` through a name not in `keep`."""
    users = []
    for record in await registry.store.all("chain"):
        for step in record.spec.get("steps", []):
            name = step.get("model")
            if name in keep:
                continue
            if await registry.store.resolve_name(name) == ("model", model_id):
                users.append(f"{record.id} (step model '{name}')")
    return users


async def _check_chain_steps(registry: Registry, spec: BaseModel) -> None:
    assert isinstance(spec, ChainSpec)
    for index, step in enumerate(spec.steps):
        found = await registry.store.resolve_name(step.model)
        if found is None:
            raise InvalidRequest(f"steps[{index}].model: no model is named '{step.model}'",
                                 param=f"steps[{index}].model", code="model_not_found")
        if found[0] != "model":
            raise InvalidRequest(
                f"steps[{index}].model: '{step.model}' is a chain; a step must name a model",
                param=f"steps[{index}].model",
            )


async def _keep_names_chains_use(registry: Registry, spec: BaseModel) -> None:
    assert isinstance(spec, ModelSpec)
    users = await _chains_using(registry, spec.id, {spec.id, *spec.aliases})
    if users:
        raise Conflict(
            f"model '{spec.id}' would lose a name that chains use: {', '.join(users)}",
            param="aliases",
        )


async def _not_used_by_chains(registry: Registry, model_id: str) -> None:
    users = await _chains_using(registry, model_id, set())
    if users:
        raise Conflict(
            f"model '{model_id}' is used by chains: {', '.join(users)}; remove it from them first"
        )


def gateway_kinds(secrets: Secrets) -> list[Kind]:
    async def credentials_resolvable(_: Registry, spec: BaseModel) -> None:
        assert isinstance(spec, ModelSpec)
        for path, reference in [("credentials", spec.credentials)] + [
            (f"deployments[{i}].credentials", d.credentials)
            for i, d in enumerate(spec.deployments)
        ]:
            if reference is not None:
                try:
                    secrets.check_reference(reference)
                except InvalidRequest as error:
                    error.param = path
                    raise

    return [
        Kind("model", ModelSpec, claims_names=True,
             checks=[credentials_resolvable, _keep_names_chains_use],
             delete_checks=[_not_used_by_chains]),
        Kind("chain", ChainSpec, claims_names=True, checks=[_check_chain_steps]),
        Kind("prompt", PromptSpec),
    ]
