"""Asynchronous operations: stored in the database, run in-process (embedded mode)
or by `headrace worker` processes through a PostgreSQL task queue (distributed)."""

from engine.operations.executor import OperationExecutor, default_describe_error
from engine.operations.runner import OperationRunner
from engine.operations.store import (
    OPERATION_TYPES,
    STATUSES,
    OperationStore,
    new_operation_id,
    operation_body,
)
from engine.operations.webhooks import WebhookSender, sign, verify_signature

__all__ = [
    "OPERATION_TYPES",
    "STATUSES",
    "OperationExecutor",
    "OperationRunner",
    "OperationStore",
    "WebhookSender",
    "default_describe_error",
    "new_operation_id",
    "operation_body",
    "sign",
    "verify_signature",
]
