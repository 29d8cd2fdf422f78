"""JSON in and out with orjson: several times faster than the standard library,
and datetimes come out as RFC 3339 with `Z`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel
from quart import Response
from quart.json.provider import DefaultJSONProvider

OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=OPTIONS)
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits, which JSON (and a client's
        # metadata) may hold; the standard library writes them.
        return json.dumps(value, default=_stdlib_default, ensure_ascii=False,
                          separators=(",", ":")).encode()


def _stdlib_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return _default(value)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    """A finished JSON response; views on the hot path return it so no framework
    layer converts or re-serialises the body."""
    return Response(dumps(data), status=status, headers=headers,
                    content_type="application/json")


class OrjsonProvider(DefaultJSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(dumps(obj), mimetype=self.mimetype)
