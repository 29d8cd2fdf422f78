"""`create_app(settings)`: wire settings, storage and connectors into one Quart app."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from quart import Quart

from api import chat, embeddings, health, messages, models, responses, unsupported
from api import knowledge as knowledge_api
from api import operations as operations_api
from api import workflows as workflows_api
from api.admin import gateway as admin_gateway
from api.admin import governance_usage as admin_usage
from api.admin import keys as admin_keys
from api.auth import install_auth
from api.console import mount_console
from api.errors import register_error_handlers
from api.jsonio import OrjsonProvider
from api.middleware import install_request_context
from api.openapi import init_openapi
from api.state import AppState
from api.wiring import GovernanceParts, build_gateway, build_governance
from connectors.state.redis import connect as connect_redis
from engine import tokens
from engine.governance.kinds import governance_kinds
from engine.governance.pipeline import GovernedGateway
from engine.knowledge.kinds import knowledge_kinds
from engine.knowledge.service import KnowledgeService
from engine.logs import get_logger
from engine.operations import OperationRunner, OperationStore, WebhookSender
from engine.settings import Settings
from engine.store import Database, ResourceStore
from engine.store.migrate import require_current_schema, upgrade
from engine.store.types import utcnow
from engine.workflows.events import MemoryEventBuffer, RedisEventBuffer
from engine.workflows.kinds import workflow_kinds
from engine.workflows.service import WorkflowService

if TYPE_CHECKING:
    from api.state import Operations

log = get_logger("headrace.app")


def create_app(settings: Settings | None = None, *, serve_ui: bool | None = None) -> Quart:
    settings = settings or Settings()
    serve_ui = settings.serve_ui if serve_ui is None else serve_ui

    app = Quart("headrace", static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        PROPAGATE_EXCEPTIONS=False,
    )

    if settings.is_sqlite and settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    resources = ResourceStore(db)
    redis = connect_redis(settings.redis_url) if settings.redis_url else None
    parts = build_gateway(settings, resources, redis)
    gov = build_governance(db, parts.catalog, redis)
    parts.registry.audit = gov.audit
    parts.registry.add_kinds(governance_kinds(gov.keys))
    knowledge = KnowledgeService(
        db, settings.data_dir, parts.gateway.embed,
        default_pg_url=None if settings.is_sqlite else settings.resolved_database_url)
    parts.registry.add_kinds(knowledge_kinds(knowledge))
    parts.registry.add_kinds(workflow_kinds())
    events = RedisEventBuffer(redis) if redis is not None else MemoryEventBuffer()
    workflows = WorkflowService(db, resources, events,
                                allow_private_http=settings.knowledge_allow_private_urls)
    state = AppState(settings=settings, db=db, resources=resources, redis=redis, parts=parts,
                     gov=gov, governed=GovernedGateway(parts.gateway, gov.governance),
                     knowledge=knowledge, workflows=workflows)
    operation_store = OperationStore(db)
    sender = (WebhookSender(operation_store, settings.webhook_secret.get_secret_value(),
                            allow_private=settings.knowledge_allow_private_urls)
              if settings.webhook_secret else None)
    state.operations = _operations(settings, operation_store, operations_api.handlers(state),
                                   sender)
    app.extensions["headrace"] = state

    register_error_handlers(app)
    install_request_context(app, access_log_enabled=settings.access_log)
    install_auth(app)
    init_openapi(app)
    app.json = OrjsonProvider(app)  # keeps fields in the order the models declare
    app.register_blueprint(health.blueprint)
    for blueprint in (chat.blueprint, responses.blueprint, messages.blueprint,
                      embeddings.blueprint, models.blueprint,
                      unsupported.blueprint, admin_gateway.blueprint, admin_keys.blueprint,
                      admin_usage.blueprint, knowledge_api.blueprint,
                      workflows_api.blueprint, operations_api.blueprint):
        app.register_blueprint(blueprint)
    if serve_ui:
        mount_console(app)

    background: list[asyncio.Task] = []

    @app.before_serving
    async def _open() -> None:
        if settings.should_auto_migrate:
            schema = await upgrade(db)
            log.info("database migrated", url=db.display_url, revision=schema.current)
        else:
            await require_current_schema(db)
        await parts.catalog.start()
        if settings.admin_api_key is not None:
            await gov.keys.ensure_bootstrap(settings.admin_api_key.get_secret_value())
        gov.usage.start()
        # tiktoken loads its encodings (~1 s) before the first request needs one.
        background.append(asyncio.create_task(asyncio.to_thread(tokens.preload),
                                              name="tokenizer"))
        background.append(asyncio.create_task(_flush_last_used(gov), name="last-used"))
        background.append(asyncio.create_task(
            _expire_runs(workflows, settings.workflow_run_retention_days), name="run-retention"))
        await state.operations.start()
        background.append(asyncio.create_task(
            _expire_operations(operation_store, settings.operations_retention_days),
            name="operation-retention"))

    @app.after_serving
    async def _close() -> None:
        for task in background:
            task.cancel()
        await state.operations.close(grace_s=5.0)
        await workflows.aclose()
        await gov.aclose()
        await knowledge.aclose()
        await parts.aclose()
        if state.redis is not None:
            await state.redis.aclose()
        await db.close()

    return app


def _operations(settings: Settings, store: OperationStore, handlers: dict,
                sender: WebhookSender | None) -> Operations:
    if settings.operations_mode == "distributed":
        from engine.operations.distributed import DistributedOperations

        return DistributedOperations(
            store, settings.resolved_database_url, handlers, webhook_sender=sender,
            describe_error=operations_api.describe_error,
            max_attempts=settings.operations_max_attempts,
            heartbeat_s=settings.operations_heartbeat_s,
            stalled_after_s=settings.operations_stalled_after_s,
            shutdown_grace_s=settings.operations_shutdown_grace_s,
            pool_size=settings.operations_max_concurrency + 4)
    return OperationRunner(store, handlers, max_concurrency=settings.operations_max_concurrency,
                           webhook_sender=sender, describe_error=operations_api.describe_error)


async def _flush_last_used(gov: GovernanceParts) -> None:
    while True:
        await asyncio.sleep(gov.authenticator.touch_interval_s)
        try:
            await gov.authenticator.flush_last_used()
        except Exception as error:  # a failed write must not stop the loop
            log.warning("could not record keys' last use", error=f"{type(error).__name__}")


async def _expire_runs(workflows: WorkflowService, retention_days: float) -> None:
    while True:
        try:
            cutoff = utcnow() - timedelta(days=retention_days)
            deleted = await workflows.delete_runs_before(cutoff)
            if deleted:
                log.info("old workflow runs deleted", count=deleted)
        except Exception as error:  # keep trying; the next pass catches up
            log.warning("workflow run cleanup failed", error=f"{type(error).__name__}")
        await asyncio.sleep(3600)


async def _expire_operations(store: OperationStore, retention_days: float) -> None:
    while True:
        try:
            deleted = await store.delete_expired(utcnow() - timedelta(days=retention_days))
            if deleted:
                log.info("expired operations deleted", count=deleted)
        except Exception as error:  # keep trying; the next pass catches up
            log.warning("operation cleanup failed", error=f"{type(error).__name__}")
        await asyncio.sleep(3600)
