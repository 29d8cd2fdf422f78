"""`aws:<secret-id>#<field>`: AWS Secrets Manager through aiobotocore.

A JSON secret string is read as an object and `#field` picks a key; a plain
string is the value itself.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from connectors.secrets.vault import pick_field, split_field
from engine.secrets import SecretError


class AwsSecretsSource:
    scheme = "aws"

    def __init__(self, region: str, *, endpoint_url: str | None = None):
        self.region = region
        self.endpoint_url = endpoint_url
        self.description = f"AWS Secrets Manager ({region})"
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._opening = asyncio.Lock()

    async def _secrets_manager(self) -> Any:
        # Creating the client may await (credentials from IMDS, SSO...): one at a time,
        # or concurrent first fetches would each open a client.
        async with self._opening:
            if self._client is None:
                self._client = await self._stack.enter_async_context(
                    get_session().create_client(
                        "secretsmanager", region_name=self.region,
                        endpoint_url=self.endpoint_url,
                    )
                )
        return self._client

    async def fetch(self, path: str) -> str:
        reference = f"aws:{path}"
        secret_id, field = split_field(path)
        try:
            client = await self._secrets_manager()
            result = await client.get_secret_value(SecretId=secret_id)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise SecretError(f"AWS Secrets Manager: {code} for {reference}") from None
        except BotoCoreError as error:
            raise SecretError(
                f"AWS Secrets Manager unavailable for {reference}: {type(error).__name__}"
            ) from None
        text = result.get("SecretString")
        if text is None:
            raise SecretError(f"{reference} is a binary secret; only strings are supported")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return pick_field(data, field, reference)
        if field is not None:
            raise SecretError(
                f"{reference}: the secret is not a JSON object, so #{field} is absent"
            )
        return text

    def changed(self, path: str, fetched_at: float) -> bool:
        return False

    async def aclose(self) -> None:
        self._client = None
        await self._stack.aclose()
