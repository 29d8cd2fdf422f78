"""AWS Bedrock: chat through the Converse API, embeddings through InvokeModel.

aiobotocore signs the requests (SigV4) and speaks the binary event stream.
One client per (region, endpoint, credentials, timeouts) is kept open, so its
connection pool is reused. botocore's own retries are off: the gateway's
executor retries, with its own budget and backoff, and two layers of retries
would multiply.

The secret is None (the default AWS credential chain: environment, profile,
instance or task role), a JSON object with `aws_access_key_id`,
`aws_secret_access_key` and optionally `aws_session_token`, or
`ACCESS_KEY:SECRET_KEY`. It is never logged, and scrubbed from error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any, NamedTuple

import aiohttp
import orjson
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.eventstream import ParserError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from multidict import CIMultiDict

from connectors.llm.http import parse_retry_after
from engine.errors import InvalidRequest, UpstreamError, UpstreamTimeout
from engine.formats.bedrock import (
    COHERE_BATCH,
    ConverseStreamTranslator,
    cohere_body,
    cohere_vectors,
    embedding_family,
    embedding_list,
    from_converse,
    titan_body,
    titan_vector,
    to_converse,
)
from engine.gateway.providers import Call
from engine.schemas.chat import ChatCompletionRequest, EmbeddingRequest

DEFAULT_REGION = "us-east-1"
DEFAULT_POOL = 64  # connections per client when the deployment sets no concurrency cap
_CLIENT_REJECTS = frozenset({400, 413, 422})
# AWS error codes whose meaning is clearer than their HTTP status (and the status
# of exceptions raised from an event stream, which carry none).
_CODE_STATUS = {
    "ValidationException": 400, "ConflictException": 400, "AccessDeniedException": 403,
    "UnrecognizedClientException": 403, "InvalidSignatureException": 403,
    "ExpiredTokenException": 403, "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408, "ThrottlingException": 429, "ModelNotReadyException": 429,
    # A quota is not the request's fault: retry later, or fall back.
    "ServiceQuotaExceededException": 429, "ModelErrorException": 424,
    "ModelStreamErrorException": 424, "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}
_TRANSPORT_ERRORS = (BotoCoreError, aiohttp.ClientError, TimeoutError, ParserError)
# The caller's trace context, read when a request is signed (clients are shared).
_TRACEPARENT: ContextVar[str | None] = ContextVar("bedrock_traceparent", default=None)


class Credentials(NamedTuple):
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # a stray log line must not carry the keys
        return "Credentials(***)"


def parse_credentials(secret: str | None, name: str) -> Credentials | None:
    """The AWS keys in a secret; None means the default credential chain."""
    if secret is None or not secret.strip():
        return None
    text = secret.strip()
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = None
        if (isinstance(data, dict) and isinstance(data.get("aws_access_key_id"), str)
                and isinstance(data.get("aws_secret_access_key"), str)):
            token = data.get("aws_session_token")
            return Credentials(data["aws_access_key_id"], data["aws_secret_access_key"],
                               token if isinstance(token, str) and token else None)
    else:
        parts = text.split(":")
        if len(parts) in (2, 3) and all(parts[:2]):
            return Credentials(parts[0], parts[1], parts[2] if len(parts) == 3 else None)
    # Never echo the secret: only say what shape was expected.
    raise UpstreamError(
        f"{name}: credentials are not AWS keys (expected a JSON object with aws_access_key_id "
        f"and aws_secret_access_key, or ACCESS_KEY:SECRET_KEY)", status=401,
        code="invalid_credentials",
    )


def _scrub(text: str, credentials: Credentials | None) -> str:
    """Text from AWS or botocore with the keys masked (a signature error can quote one).

    Values too short to be real keys are left alone: masking "y" would mangle
    every message and protect nothing.
    """
    for value in credentials or ():
        if value and len(value) >= 8:
            text = text.replace(value, "***")
    return text


def client_error(name: str, error: ClientError, credentials: Credentials | None) -> Exception:
    """An AWS error answer as the gateway's error (400s are the request's fault)."""
    response = error.response or {}
    meta = response.get("ResponseMetadata") or {}
    details = response.get("Error") or {}
    code = str(details.get("Code") or "")
    status = _CODE_STATUS.get(code) or int(meta.get("HTTPStatusCode") or 0) or 500
    detail = _scrub(str(details.get("Message") or ""), credentials)
    message = f"{name} answered {status} {code}: {detail}".strip()[:500]
    if status in _CLIENT_REJECTS:
        return InvalidRequest(f"upstream rejected the request: {message}",
                              code="upstream_rejected")
    retry_after = parse_retry_after(CIMultiDict(meta.get("HTTPHeaders") or {}))
    return UpstreamError(message, status=status, retry_after=retry_after,
                         code=f"upstream_{status}")


def transport_error(
    name: str, error: BaseException, credentials: Credentials | None, *, streaming: bool = False
) -> Exception:
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError | TimeoutError):
        return UpstreamTimeout(f"{name} timed out: {type(error).__name__}")
    if isinstance(error, NoCredentialsError):
        return UpstreamError(f"{name}: no AWS credentials found (set the deployment's "
                             f"credentials or configure the default chain)", status=401)
    if isinstance(error, ParamValidationError):
        return InvalidRequest(f"{name} cannot take this request: {error}"[:500],
                              code="upstream_rejected")
    detail = f"{type(error).__name__}: {_scrub(str(error), credentials)}"
    if streaming:
        return UpstreamError(f"{name} broke off the stream: {detail}"[:400])
    return UpstreamError(f"could not reach {name}: {detail}"[:400])


def _add_traceparent(request: Any, **_: Any) -> None:
    if traceparent := _TRACEPARENT.get():
        request.headers["traceparent"] = traceparent


class BedrockProvider:
    def __init__(self, session: AioSession | None = None):
        self.session = session or AioSession()
        self._clients: dict[tuple, Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    @staticmethod
    def _name(call: Call) -> str:
        return f"Bedrock deployment '{call.deployment.key}'"

    async def _client(self, call: Call, credentials: Credentials | None) -> Any:
        d = call.deployment
        region = d.region or self.session.get_config_variable("region") or DEFAULT_REGION
        pool = max(d.max_concurrency or 0, DEFAULT_POOL)
        key = (region, d.base_url, credentials, d.timeouts.connect_ms, d.timeouts.read_ms, pool)
        client = self._clients.get(key)
        if client is not None:
            return client
        async with self._lock:
            if (client := self._clients.get(key)) is not None:
                return client
            config = AioConfig(
                # `max_attempts` counts retries after the first try (1 would mean two
                # tries); `total_max_attempts` counts tries, so 1 is no retry at all.
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=d.timeouts.connect_ms / 1000,
                read_timeout=d.timeouts.read_ms / 1000,
                max_pool_connections=pool,
            )
            keys: dict[str, str] = {}
            if credentials is not None:
                keys = {"aws_access_key_id": credentials.access_key_id,
                        "aws_secret_access_key": credentials.secret_access_key}
                if credentials.session_token:
                    keys["aws_session_token"] = credentials.session_token
            client = await self._stack.enter_async_context(self.session.create_client(
                "bedrock-runtime", region_name=region, endpoint_url=d.base_url or None,
                config=config, **keys,
            ))
            client.meta.events.register("before-sign.bedrock-runtime", _add_traceparent)
            self._clients[key] = client
            return client

    async def _request(
        self, call: Call, operation: Callable[[Any], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """One API call, with AWS's failures turned into the gateway's."""
        name = self._name(call)
        credentials = parse_credentials(call.secret, name)
        _TRACEPARENT.set(call.traceparent)
        try:
            client = await self._client(call, credentials)
            return await operation(client)
        except ClientError as error:
            raise client_error(name, error, credentials) from None
        except _TRANSPORT_ERRORS as error:
            raise transport_error(name, error, credentials) from None

    async def complete(self, call: Call, request: ChatCompletionRequest) -> dict[str, Any]:
        payload = to_converse(request, call.deployment.model)
        response = await self._request(call, lambda client: client.converse(**payload))
        return from_converse(response, request, call.deployment.model)

    async def stream(
        self, call: Call, request: ChatCompletionRequest
    ) -> AsyncIterator[dict[str, Any]]:
        payload = to_converse(request, call.deployment.model)
        name = self._name(call)
        response = await self._request(call, lambda client: client.converse_stream(**payload))
        events = response["stream"]
        translator = ConverseStreamTranslator(request, name, call.deployment.model)
        credentials = parse_credentials(call.secret, name)
        try:
            try:
                async for event in events:
                    for chunk in translator.feed(event):
                        yield chunk
            except ClientError as error:  # an exception event (EventStreamError)
                raise client_error(name, error, credentials) from None
            except _TRANSPORT_ERRORS as error:
                raise transport_error(name, error, credentials, streaming=True) from None
            if not translator.stopped:
                raise UpstreamError(f"{name} ended the stream before messageStop")
        finally:
            events.close()

    async def embed(self, call: Call, request: EmbeddingRequest) -> dict[str, Any]:
        texts = request.texts
        if texts is None:
            raise InvalidRequest("provider bedrock takes text inputs, not token arrays",
                                 param="input")
        model = call.deployment.model
        if embedding_family(model) == "titan":
            bodies = [titan_body(text, model, request.dimensions) for text in texts]
            answers = await asyncio.gather(*(self._invoke(call, b) for b in bodies))
            vectors = [titan_vector(answer) for answer, _ in answers]
            tokens = sum(int(a.get("inputTextTokenCount") or t) for a, t in answers)
        else:
            batches = [texts[i:i + COHERE_BATCH] for i in range(0, len(texts), COHERE_BATCH)]
            answers = await asyncio.gather(*(
                self._invoke(call, cohere_body(b, model, request.dimensions)) for b in batches))
            vectors = [v for answer, _ in answers for v in cohere_vectors(answer)]
            tokens = sum(t for _, t in answers)
        if len(vectors) != len(texts):
            raise UpstreamError(f"{self._name(call)} returned {len(vectors)} embeddings "
                                f"for {len(texts)} inputs")
        return embedding_list(vectors, model, tokens)

    async def _invoke(self, call: Call, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """An InvokeModel answer's JSON body, and the input tokens AWS counted."""

        async def invoke(client: Any) -> dict[str, Any]:
            response = await client.invoke_model(
                modelId=call.deployment.model, body=orjson.dumps(body),
                contentType="application/json", accept="application/json",
            )
            async with response["body"] as stream:
                response["body"] = await stream.read()
            return response

        response = await self._request(call, invoke)
        try:
            answer = orjson.loads(response["body"])
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self._name(call)} returned a body that is not JSON") from None
        headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        tokens = int(headers.get("x-amzn-bedrock-input-token-count") or 0)
        if not isinstance(answer, dict):
            raise UpstreamError(f"{self._name(call)} returned an unexpected embedding body")
        return answer, tokens

    async def aclose(self) -> None:
        self._clients.clear()
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()
