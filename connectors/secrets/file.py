"""`file:/path`: a mounted secret file (Kubernetes Secret, Vault Agent, Docker secret).

The file is re-read as soon as it changes (another inode, size or modification
time than when it was read), so a rotated secret is used without a restart.
Surrounding whitespace is stripped.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from engine.secrets import SecretError

# A file modified this shortly before it was read may change again within the same
# file-time tick without its stat changing: it counts as changed until read later.
_RACY_NS = 100_000_000


def _signature(target: Path) -> tuple[int, int, int, int]:
    stat = os.stat(target)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


class FileSource:
    scheme = "file"
    description = "mounted files, re-read when they change"

    def __init__(self, root: str | None = None):
        # With a root, references must stay inside it (no ../ escapes).
        self.root = Path(root).resolve() if root else None
        # path -> (stat signature, when it was taken) at the last read
        self._read: dict[str, tuple[tuple[int, int, int, int], int]] = {}

    def _path(self, path: str) -> Path:
        resolved = Path(path).resolve() if not self.root else (self.root / path).resolve()
        if self.root and self.root not in resolved.parents and resolved != self.root:
            raise SecretError(f"file:{path} is outside the allowed secrets directory")
        return resolved

    async def fetch(self, path: str) -> str:
        target = self._path(path)
        try:
            # Stat before reading: a change during the read shows up as a change next time.
            read_at = time.time_ns()
            signature = _signature(target)
            text = await asyncio.to_thread(target.read_text)
        except OSError:
            raise SecretError(f"secret file is missing or unreadable (file:{path})") from None
        self._read[path] = (signature, read_at)
        value = text.strip()
        if not value:
            raise SecretError(f"secret file is empty (file:{path})")
        return value

    def changed(self, path: str, fetched_at: float) -> bool:
        # Not `mtime > fetched_at`: a rotation that swaps in a file written earlier
        # (Kubernetes' symlink swap, `mv`) keeps an older mtime.
        try:
            signature = _signature(self._path(path))
        except (OSError, SecretError):
            return True
        read = self._read.get(path)
        if read is None:
            return True
        (seen, read_at) = read
        return signature != seen or seen[3] > read_at - _RACY_NS
