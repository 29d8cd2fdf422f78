"""Structured logging: JSON lines in production, readable lines in a terminal.

Every record carries the context bound for the current task (request id, trace
id) through `structlog.contextvars`. Standard-library loggers (hypercorn,
alembic, httpx) go through the same renderer. Values under secret-looking keys
are redacted before rendering, whatever logged them.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal

import orjson
import structlog

SECRET_KEY = re.compile(
    r"(authorization|api[-_]?key|secret|password|token|credential|private[-_]?key)", re.I
)
# Anything shaped like a Headrace key or a bearer token, wherever it appears in text.
SECRET_VALUE = re.compile(r"(pk_(?:live|test)_[A-Za-z0-9_\-]{6})[A-Za-z0-9_\-]+|(Bearer\s+)\S+")
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """Return `value` with secrets replaced, recursing into dicts and lists."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and SECRET_KEY.search(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return SECRET_VALUE.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, value)
    return value


def _redact_processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    return redact(event)


def _orjson_dumps(value: Any, default: Any = None) -> str:
    return orjson.dumps(value, default=default or str).decode()


def configure_logging(
    level: str = "INFO", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_processor,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=True)
        if use_console
        else structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our middleware writes the access log; hypercorn's would duplicate it.
    logging.getLogger("hypercorn.access").disabled = True
    for noisy in ("httpx", "httpcore", "botocore", "aiobotocore", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
