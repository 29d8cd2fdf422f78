"""Parse and validate request input once, at the edge, into pydantic models.

`json_body` and `query_args` do two jobs with one declaration: they validate
the request (turning pydantic's errors into a 400 that names the field), and
they record the model where quart-schema looks for it, so `/openapi.json` is
generated from the very models that validate. `responds` records response
models for the document without re-validating every response at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import request
from quart_schema.openapi import QUART_SCHEMA_SECURITY_ATTRIBUTE
from quart_schema.validation import (
    QUART_SCHEMA_QUERYSTRING_ATTRIBUTE,
    QUART_SCHEMA_REQUEST_ATTRIBUTE,
    QUART_SCHEMA_RESPONSE_ATTRIBUTE,
    DataSource,
)

from engine.errors import InvalidRequest, UnsupportedMediaType
from engine.validation import invalid_from

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


async def parse_json(model: type[M]) -> M:
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"Expected Content-Type application/json, got {mimetype or 'none'}"
        )
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        raise InvalidRequest("Request body is empty; expected a JSON object", code="invalid_body")
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise invalid_from(error) from None


def parse_query(model: type[M]) -> M:
    data: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        data[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise invalid_from(error) from None


def json_body(model: type[BaseModel]) -> Callable[[F], F]:
    """Validate the JSON body into `model`, passed to the view as `body=`."""

    def decorator(func: F) -> F:
        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await func(*args, body=await parse_json(model), **kwargs)

        setattr(wrapper, QUART_SCHEMA_REQUEST_ATTRIBUTE, (model, DataSource.JSON))
        return wrapper  # type: ignore[return-value]

    return decorator


def query_args(model: type[BaseModel]) -> Callable[[F], F]:
    """Validate the query string into `model`, passed to the view as `query=`."""

    def decorator(func: F) -> F:
        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await func(*args, query=parse_query(model), **kwargs)

        setattr(wrapper, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, model)
        return wrapper  # type: ignore[return-value]

    return decorator


def responds(status: int, model: type[BaseModel]) -> Callable[[F], F]:
    """Document that the view answers `status` with a body shaped like `model`."""

    def decorator(func: F) -> F:
        schemas = getattr(func, QUART_SCHEMA_RESPONSE_ATTRIBUTE, {})
        schemas[status] = (model, None)
        setattr(func, QUART_SCHEMA_RESPONSE_ATTRIBUTE, schemas)
        return func

    return decorator


TEXT_RESPONSE_ATTRIBUTE = "_headrace_text_responses"


def responds_text(status: int, media_type: str, description: str) -> Callable[[F], F]:
    """Document a response that is not JSON (metrics, event streams, files)."""

    def decorator(func: F) -> F:
        responses = getattr(func, TEXT_RESPONSE_ATTRIBUTE, {})
        responses[status] = (media_type, description)
        setattr(func, TEXT_RESPONSE_ATTRIBUTE, responses)
        return func

    return decorator


def public(func: F) -> F:
    """Document that the route needs no API key (probes, metrics)."""
    setattr(func, QUART_SCHEMA_SECURITY_ATTRIBUTE, [])
    return func
