"""`env:NAME`: a process environment variable."""

from __future__ import annotations

import os

from engine.secrets import SecretError


class EnvSource:
    scheme = "env"
    description = "environment variables of the Headrace process"

    async def fetch(self, path: str) -> str:
        value = os.environ.get(path)
        if not value:
            raise SecretError(f"environment variable {path} is not set (env:{path})")
        return value

    def changed(self, path: str, fetched_at: float) -> bool:
        return False
