"""Read objects from S3 (or an S3-compatible endpoint) through aiobotocore.

Errors become `InvalidRequest` (param `s3`) naming the bucket and key, built from
the AWS error code only, so credentials never reach a message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from engine.errors import InvalidRequest, PayloadTooLarge

PARAM = "s3"


@dataclass(frozen=True)
class S3Object:
    key: str
    etag: str  # without the surrounding quotes
    size: int
    last_modified: datetime | None


def _etag(value: str | None) -> str:
    return (value or "").strip('"')


@asynccontextmanager
async def _client(*, region: str, endpoint_url: str | None,
                  credentials: dict[str, str] | None) -> AsyncIterator[Any]:
    keys: dict[str, str] = {}
    if credentials:  # else the default AWS credential chain
        keys = {"aws_access_key_id": credentials["aws_access_key_id"],
                "aws_secret_access_key": credentials["aws_secret_access_key"]}
        if credentials.get("aws_session_token"):
            keys["aws_session_token"] = credentials["aws_session_token"]
    config = Config(retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=10, read_timeout=60)
    async with get_session().create_client("s3", region_name=region, endpoint_url=endpoint_url,
                                           config=config, **keys) as client:
        yield client


def _error(error: Exception, bucket: str, key: str | None = None) -> InvalidRequest:
    where = f"s3://{bucket}/{key}" if key is not None else f"bucket '{bucket}'"
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code") or error.response.get("ResponseMetadata", {})
                   .get("HTTPStatusCode") or "error")
        return InvalidRequest(f"S3: {code} for {where}", param=PARAM, code="s3_error")
    return InvalidRequest(f"S3 unavailable for {where}: {type(error).__name__}",
                          param=PARAM, code="s3_error")


async def list_objects(bucket: str, prefix: str = "", *, region: str = "us-east-1",
                       endpoint_url: str | None = None,
                       credentials: dict[str, str] | None = None,
                       max_objects: int | None = None) -> list[S3Object]:
    """The objects under `prefix` (folders, i.e. keys ending in `/`, left out)."""
    found: list[S3Object] = []
    try:
        async with _client(region=region, endpoint_url=endpoint_url,
                           credentials=credentials) as client:
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue
                    found.append(S3Object(key=item["Key"], etag=_etag(item.get("ETag")),
                                          size=int(item.get("Size", 0)),
                                          last_modified=item.get("LastModified")))
                    if max_objects is not None and len(found) >= max_objects:
                        return found
    except (ClientError, BotoCoreError) as error:
        raise _error(error, bucket) from None
    return found


async def get_object(bucket: str, key: str, *, region: str = "us-east-1",
                     endpoint_url: str | None = None,
                     credentials: dict[str, str] | None = None,
                     max_bytes: int) -> bytes:
    """An object's bytes; `PayloadTooLarge` past `max_bytes`."""
    try:
        async with _client(region=region, endpoint_url=endpoint_url,
                           credentials=credentials) as client:
            response = await client.get_object(Bucket=bucket, Key=key)
            if int(response.get("ContentLength") or 0) > max_bytes:
                response["Body"].close()
                raise PayloadTooLarge(f"s3://{bucket}/{key} is larger than {max_bytes} bytes",
                                      param=PARAM)
            data = bytearray()
            async with response["Body"] as body:
                while chunk := await body.read(1 << 16):
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise PayloadTooLarge(
                            f"s3://{bucket}/{key} is larger than {max_bytes} bytes",
                            param=PARAM)
            return bytes(data)
    except (ClientError, BotoCoreError) as error:
        raise _error(error, bucket, key) from None
