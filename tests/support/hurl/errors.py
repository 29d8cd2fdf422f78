"""Exceptions: the public :class:`HurlError` and the internal per-line error."""

from __future__ import annotations


class HurlError(Exception):
    """A Hurl file is invalid, or one of its entries failed. ``failures`` has every message."""

    def __init__(self, failures: list[str] | str) -> None:
        self.failures = [failures] if isinstance(failures, str) else list(failures)
        super().__init__("\n".join(self.failures))


class _LineError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
