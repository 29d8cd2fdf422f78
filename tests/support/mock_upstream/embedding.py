"""Deterministic embeddings: the input text hashed into a unit vector."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from functools import lru_cache

DEFAULT_DIMENSIONS = 8
_WORDS_PER_DIGEST = 16  # a 64-byte blake2b digest holds sixteen uint32s
_UNPACK = struct.Struct(f"<{_WORDS_PER_DIGEST}I").unpack


@lru_cache(maxsize=4096)
def _embed(text: str, dimensions: int) -> tuple[float, ...]:
    values: list[float] = []
    seed = text.encode()
    block = 0
    while len(values) < dimensions:
        digest = hashlib.blake2b(seed, digest_size=64, salt=block.to_bytes(16, "little")).digest()
        values.extend(word / 2147483647.5 - 1.0 for word in _UNPACK(digest))
        block += 1
    del values[dimensions:]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return tuple(v / norm for v in values)


def embed(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A unit vector of `dimensions` floats that depends only on `text`."""
    if dimensions < 1:
        raise ValueError("dimensions must be at least 1")
    return list(_embed(text, dimensions))


def to_base64(vector: list[float]) -> str:
    """Little-endian float32, base64: OpenAI's ``encoding_format: base64``."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
