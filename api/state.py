"""The objects a running app shares between requests, built once in `create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from quart import current_app
from redis.asyncio import Redis

from engine.settings import Settings
from engine.store import Database, ResourceStore

if TYPE_CHECKING:
    from api.wiring import GatewayParts, GovernanceParts
    from engine.governance.pipeline import GovernedGateway
    from engine.knowledge.service import KnowledgeService
    from engine.operations import OperationRunner
    from engine.operations.distributed import DistributedOperations
    from engine.workflows.service import WorkflowService

    # In-process (embedded) or through the task queue (distributed): one interface.
    Operations = OperationRunner | DistributedOperations


@dataclass
class AppState:
    settings: Settings
    db: Database
    resources: ResourceStore
    redis: Redis | None = None
    parts: GatewayParts | None = None
    gov: GovernanceParts | None = None
    governed: GovernedGateway | None = None
    knowledge: KnowledgeService | None = None  # type: ignore[assignment]
    workflows: WorkflowService | None = None  # type: ignore[assignment]
    operations: Operations | None = None  # type: ignore[assignment]

    # The parts, by name, for the routes that use them.
    @property
    def gateway(self) -> GovernedGateway:
        """The gateway as clients reach it: authorised, budgeted, accounted."""
        return self.governed  # type: ignore[return-value]

    @property
    def governance(self):
        return self.gov.governance  # type: ignore[union-attr]

    @property
    def keys(self):
        return self.gov.keys  # type: ignore[union-attr]

    @property
    def authenticator(self):
        return self.gov.authenticator  # type: ignore[union-attr]

    @property
    def audit(self):
        return self.gov.audit  # type: ignore[union-attr]

    @property
    def usage(self):
        return self.gov.usage  # type: ignore[union-attr]

    @property
    def usage_query(self):
        return self.gov.usage_query  # type: ignore[union-attr]

    @property
    def budgets(self):
        return self.gov.budgets  # type: ignore[union-attr]

    @property
    def registry(self):
        return self.parts.registry  # type: ignore[union-attr]

    @property
    def catalog(self):
        return self.parts.catalog  # type: ignore[union-attr]

    @property
    def secrets(self):
        return self.parts.secrets  # type: ignore[union-attr]

    @property
    def breakers(self):
        return self.parts.breakers  # type: ignore[union-attr]

    @property
    def router(self):
        return self.parts.router  # type: ignore[union-attr]


def app_state() -> AppState:
    return current_app.extensions["headrace"]
