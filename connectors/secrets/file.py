"""`file:/path`: a mounted secret file (Kubernetes Secret, Vault Agent, Docker secret).

The file is re-read as soon as its modification time changes, so a rotated
secret is used without a restart. Surrounding whitespace is stripped.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from engine.secrets import SecretError


class FileSource:
    scheme = "file"
    description = "mounted files, re-read when they change"

    def __init__(self, root: str | None = None):
        # With a root, references must stay inside it (no ../ escapes).
        self.root = Path(root).resolve() if root else None

    def _path(self, path: str) -> Path:
        resolved = Path(path).resolve() if not self.root else (self.root / path).resolve()
        if self.root and self.root not in resolved.parents and resolved != self.root:
            raise SecretError(f"file:{path} is outside the allowed secrets directory")
        return resolved

    async def fetch(self, path: str) -> str:
        target = self._path(path)
        try:
            text = await asyncio.to_thread(target.read_text)
        except OSError:
            raise SecretError(f"secret file is missing or unreadable (file:{path})") from None
        value = text.strip()
        if not value:
            raise SecretError(f"secret file is empty (file:{path})")
        return value

    def changed(self, path: str, fetched_at: float) -> bool:
        try:
            return os.stat(self._path(path)).st_mtime > fetched_at
        except (OSError, SecretError):
            return True
