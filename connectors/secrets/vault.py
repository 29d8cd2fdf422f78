"""`vault:<mount>/<path>#<field>`: HashiCorp Vault (or OpenBao) KV version 2 over HTTP."""

from __future__ import annotations

import httpx

from engine.secrets import SecretError


def split_field(path: str) -> tuple[str, str | None]:
    location, _, field = path.partition("#")
    return location, field or None


def pick_field(data: dict, field: str | None, reference: str) -> str:
    if field is None:
        if len(data) != 1:
            raise SecretError(f"{reference} holds several fields; name one with #field")
        field = next(iter(data))
    value = data.get(field)
    if value is None or value == "":
        raise SecretError(f"{reference} has no field '{field}'")
    return str(value)


class VaultSource:
    scheme = "vault"

    def __init__(self, address: str, token: str, *, namespace: str | None = None,
                 timeout_s: float = 5.0):
        self.address = address.rstrip("/")
        self.description = f"HashiCorp Vault KV v2 at {self.address}"
        headers = {"X-Vault-Token": token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout_s)

    async def fetch(self, path: str) -> str:
        reference = f"vault:{path}"
        location, field = split_field(path)
        mount, _, secret_path = location.partition("/")
        if not mount or not secret_path:
            raise SecretError(f"{reference} must look like vault:<mount>/<path>#<field>")
        url = f"{self.address}/v1/{mount}/data/{secret_path}"
        try:
            response = await self._client.get(url)
        except httpx.HTTPError as error:
            raise SecretError(
                f"Vault unreachable for {reference}: {type(error).__name__}"
            ) from None
        if response.status_code == 404:
            raise SecretError(f"{reference} does not exist in Vault")
        if response.status_code in (401, 403):
            raise SecretError(f"Vault refused access to {reference} ({response.status_code})")
        if response.status_code != 200:
            raise SecretError(f"Vault answered {response.status_code} for {reference}")
        try:
            data = (response.json().get("data") or {}).get("data") or {}
        except (ValueError, AttributeError):  # not JSON, or not a KV v2 answer
            raise SecretError(f"Vault answered {reference} with no KV v2 secret") from None
        if not isinstance(data, dict):
            raise SecretError(f"Vault answered {reference} with no KV v2 secret")
        return pick_field(data, field, reference)

    def changed(self, path: str, fetched_at: float) -> bool:
        return False

    async def aclose(self) -> None:
        await self._client.aclose()
