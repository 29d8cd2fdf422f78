"""HTTP execution of parsed entries: requests, retries, checks and results."""

from __future__ import annotations

import base64
import mimetypes
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .errors import HurlError, _LineError
from .lexer import _compile_regex
from .model import (
    _NAME_RE,
    MISSING,
    ParsedFile,
    _Assert,
    _Body,
    _Entry,
    _Multipart,
    _Request,
    _Response,
    _Tpl,
)
from .parser import _check_option, parse_text
from .predicates import _Mismatch, _predicate
from .queries import _Evaluator, _ResponseContext
from .templates import _check_variables, _infer_value
from .values import _show, _type_name

BODY_EXCERPT = 500
DEFAULT_RETRY_INTERVAL_MS = 1000
USER_AGENT = "hurl-python-runner"


@dataclass
class EntryResult:
    line: int
    method: str
    url: str
    status: int | None = None
    duration_ms: int = 0
    captures: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    skipped: bool = False


@dataclass
class HurlResult:
    file: str
    entries: list[EntryResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        if self.failures:
            raise HurlError(self.failures)


def run_file(
    path: str | Path,
    variables: dict[str, Any] | None = None,
    base_url: str | None = None,
    *,
    client: httpx.Client | None = None,
    timeout: float = 60.0,
) -> HurlResult:
    """Run a ``.hurl`` file. ``base_url`` is a shorthand for ``variables["base_url"]``.

    Relative paths in ``[MultipartFormData]`` are resolved from the file's directory.
    """
    path = Path(path)
    variables = dict(variables or {})
    if base_url is not None:
        variables["base_url"] = base_url
    return run_text(
        path.read_text(encoding="utf-8"),
        variables,
        filename=path.name,
        base_dir=path.parent,
        client=client,
        timeout=timeout,
    )


def run_text(
    text: str,
    variables: dict[str, Any] | None = None,
    filename: str = "<text>",
    *,
    base_url: str | None = None,
    base_dir: str | Path | None = None,
    client: httpx.Client | None = None,
    timeout: float = 60.0,
) -> HurlResult:
    """Parse and run Hurl source ``text``.

    Parse errors and undefined variables raise :class:`HurlError` before any request is
    sent. Runtime failures (asserts, HTTP errors) are collected in the returned result;
    call :meth:`HurlResult.raise_for_failures` to turn them into an exception.

    ``variables`` values given as strings are typed like ``hurl --variable``: ``true``,
    ``false``, ``null``, integers and floats become typed values, ``"quoted"`` is a string.
    """
    parsed = parse_text(text, filename)
    values: dict[str, Any] = {}
    for name, value in (variables or {}).items():
        if not re.fullmatch(_NAME_RE, name):
            raise HurlError(f"{filename}: invalid variable name {name!r}")
        values[name] = _infer_value(value) if isinstance(value, str) else value
    if base_url is not None:
        values["base_url"] = base_url
    _check_variables(parsed, set(values))
    own_client = client is None
    if client is None:
        client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
        # curl (and so hurl) only asks for compression with --compressed.
        client.headers.pop("Accept-Encoding", None)
    try:
        runner = _Runner(parsed, values, Path(base_dir) if base_dir else Path.cwd(), client)
        return runner.run()
    finally:
        if own_client:
            client.close()


class _Runner(_Evaluator):
    def __init__(
        self, parsed: ParsedFile, variables: dict[str, Any], base_dir: Path, client: httpx.Client
    ) -> None:
        self.parsed = parsed
        self.file = parsed.filename
        self.vars = variables
        self.base_dir = base_dir
        self.client = client

    def msg(self, line: int, text: str) -> str:
        return f"{self.file}:{line}: {text}"

    # -- file

    def run(self) -> HurlResult:
        result = HurlResult(self.file)
        for entry in self.parsed.entries:
            failures = self.run_entry(entry, result)
            if failures:
                result.failures.extend(failures)
                break
        return result

    def options(self, req: _Request) -> dict[str, Any]:
        opts: dict[str, Any] = {"retry": 0, "retry-interval": DEFAULT_RETRY_INTERVAL_MS,
                                "delay": 0, "location": False, "skip": False}
        for opt in req.options:
            value = opt.value
            if opt.name == "variable":
                self.vars[opt.var_name] = self.render(value) if isinstance(value, _Tpl) else value
                continue
            if isinstance(value, _Tpl):
                value = _check_option(opt.name, self.render(value), opt.line)
            opts[opt.name] = value
        return opts

    def run_entry(self, entry: _Entry, result: HurlResult) -> list[str]:
        req = entry.request
        record = EntryResult(req.line, req.method, "")
        result.entries.append(record)
        try:
            opts = self.options(req)
        except _LineError as exc:
            return [self.msg(exc.line, exc.message)]
        if opts["skip"]:
            record.skipped = True
            return []
        retry = opts["retry"]
        attempt = 0
        while True:
            attempt += 1
            record.attempts = attempt
            if opts["delay"]:
                time.sleep(opts["delay"] / 1000)
            failures = self.attempt(entry, record, opts["location"])
            if not failures:
                return []
            if retry != -1 and attempt > retry:
                if attempt > 1:
                    failures.append(
                        self.msg(req.line, f"entry still failing after {attempt} attempts")
                    )
                return failures
            time.sleep(opts["retry-interval"] / 1000)

    def attempt(self, entry: _Entry, record: EntryResult, follow: bool) -> list[str]:
        req = entry.request
        record.status = None
        record.captures = {}
        try:
            request = self.build_request(req)
        except _LineError as exc:
            return [self.msg(exc.line, exc.message)]
        record.url = str(request.url)
        start = time.perf_counter()
        try:
            response = self.client.send(request, follow_redirects=follow)
        except httpx.HTTPError as exc:
            return [self.msg(req.line, f"{req.method} {request.url} failed: "
                                       f"{type(exc).__name__}: {exc}")]
        record.duration_ms = int((time.perf_counter() - start) * 1000)
        record.status = response.status_code
        if entry.response is None:
            return []
        return self.check_response(entry.response, response, record)

    def build_request(self, req: _Request) -> httpx.Request:
        url = self.render(req.url)
        if not re.match(r"https?://", url):
            raise _LineError(req.line, f"URL must be absolute http(s)://..., got {url!r}")
        if req.query:
            pairs = [(self.render(k), self.render(v)) for k, v in req.query]
            query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
            url += ("&" if "?" in url else "?") + query
        headers = [(self.render(k), self.render(v)) for k, v in req.headers]
        has = {k.lower() for k, _ in headers}
        if req.basic_auth is not None:
            user, password = self.render(req.basic_auth[0]), self.render(req.basic_auth[1])
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        content: bytes | None = None
        content_type: str | None = None
        kinds = [k for k, present in (("[FormParams]", req.form),
                                      ("[MultipartFormData]", req.multipart),
                                      ("body", req.body)) if present]
        if len(kinds) > 1:
            raise _LineError(req.line, f"a request cannot have both {kinds[0]} and {kinds[1]}")
        if req.form:
            pairs = [(self.render(k), self.render(v)) for k, v in req.form]
            content = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote).encode()
            content_type = "application/x-www-form-urlencoded"
        elif req.multipart:
            content, content_type = self.multipart(req.multipart)
        elif req.body is not None:
            content, content_type = self.body_bytes(req.body)
        if content_type and "content-type" not in has:
            headers.append(("Content-Type", content_type))
        try:
            return self.client.build_request(req.method, url, headers=headers, content=content)
        except (httpx.HTTPError, ValueError, UnicodeError) as exc:
            raise _LineError(req.line, f"invalid request: {exc}") from None

    def body_bytes(self, body: _Body) -> tuple[bytes, str | None]:
        if body.kind == "json":
            assert body.json is not None
            return self.render_json(body.json).encode(), body.content_type
        if body.kind == "text":
            assert body.text is not None
            return self.render(body.text).encode(), body.content_type
        return body.data, body.content_type

    def multipart(self, params: list[_Multipart]) -> tuple[bytes, str]:
        boundary = "hurl-" + uuid.uuid4().hex
        chunks: list[bytes] = []

        def quote(s: str) -> str:
            for old, new in (('"', "%22"), ("\r", "%0D"), ("\n", "%0A")):
                s = s.replace(old, new)
            return s

        for param in params:
            name = quote(self.render(param.name))
            chunks.append(f"--{boundary}\r\n".encode())
            if param.file is None:
                assert param.value is not None
                chunks.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
                chunks.append(self.render(param.value).encode())
            else:
                rel = self.render(param.file)
                path = (self.base_dir / rel).resolve()
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise _LineError(param.line, f"cannot read file {rel!r}: {exc}") from None
                ctype = param.content_type or mimetypes.guess_type(path.name)[0] \
                    or "application/octet-stream"
                chunks.append(
                    f'Content-Disposition: form-data; name="{name}"; '
                    f'filename="{quote(Path(rel).name)}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
                )
                chunks.append(data)
            chunks.append(b"\r\n")
        chunks.append(f"--{boundary}--\r\n".encode())
        return b"".join(chunks), f"multipart/form-data; boundary={boundary}"

    # -- response

    def check_response(
        self, spec: _Response, response: httpx.Response, record: EntryResult
    ) -> list[str]:
        if spec.version is not None and response.http_version != spec.version:
            actual_version = response.http_version
            return [self.msg(spec.line, f"expected {spec.version}, got {actual_version}")]
        if spec.status is not None and response.status_code != spec.status:
            excerpt = response.content[:BODY_EXCERPT].decode("utf-8", errors="replace")
            return [self.msg(
                spec.line,
                f"expected status {spec.status}, got {response.status_code} "
                f"({response.request.method} {response.request.url}); body: {excerpt}",
            )]
        ctx = _ResponseContext(response, record.duration_ms)
        for capture in spec.captures:
            try:
                value = self.evaluate(capture.query, capture.filters, ctx)
            except _LineError as exc:
                return [self.msg(exc.line, f"capture {capture.source} failed: {exc.message}")]
            if value is MISSING:
                return [self.msg(capture.line, f"capture {capture.source} failed: no value")]
            self.vars[capture.name] = value
            record.captures[capture.name] = value
        failures: list[str] = []
        for name_tpl, value_tpl, line in spec.headers:
            try:
                name, expected = self.render(name_tpl), self.render(value_tpl)
            except _LineError as exc:
                failures.append(self.msg(exc.line, exc.message))
                continue
            actual = response.headers.get_list(name)
            if not actual:
                failures.append(
                    self.msg(line, f"header '{name}: {expected}' failed: header not found")
                )
            elif expected not in actual:
                shown = _show(actual[0] if len(actual) == 1 else actual)
                failures.append(
                    self.msg(line, f"header '{name}: {expected}' failed: actual {shown}")
                )
        if spec.body is not None:
            failure = self.check_body(spec.body, ctx)
            if failure:
                failures.append(failure)
        for assertion in spec.asserts:
            failure = self.check_assert(assertion, ctx)
            if failure:
                failures.append(failure)
        return failures

    def check_body(self, body: _Body, ctx: _ResponseContext) -> str | None:
        try:
            if body.kind == "bytes":
                expected: Any = body.data
                actual: Any = ctx.response.content
            else:
                expected = self.render_json(body.json) if body.json else self.render(body.text)  # type: ignore[arg-type]
                actual = ctx.text(body.line)
        except _LineError as exc:
            return self.msg(exc.line, exc.message)
        if expected != actual:
            return self.msg(
                body.line, f"body failed: expected {_show(expected)}, actual {_show(actual)}"
            )
        return None

    def check_assert(self, a: _Assert, ctx: _ResponseContext) -> str | None:
        head = f"assert {a.source} failed"
        try:
            actual = self.evaluate(a.query, a.filters, ctx)
            expected = self.predicate_value(a)
            try:
                ok = _predicate(a.op, actual, expected)
            except _Mismatch as exc:
                return self.msg(a.line, f"{head}: actual {_show(actual)}; type mismatch: {exc}")
        except _LineError as exc:
            return self.msg(exc.line, f"{head}: {exc.message}")
        if ok != a.negate:
            return None
        return self.msg(a.line, f"{head}: actual {_show(actual)}")

    def predicate_value(self, a: _Assert) -> Any:
        pv = a.value
        if pv is None:
            return None
        if pv.kind == "str":
            text = self.render(pv.value)
            return _compile_regex(text, a.line) if a.op == "matches" else text
        if pv.kind == "var":
            value = self.lookup(pv.value.name, a.line)
            if a.op == "matches":
                if not isinstance(value, str):
                    raise _LineError(a.line, f"matches needs a string regex, '{pv.value.name}' "
                                             f"is a {_type_name(value)}")
                return _compile_regex(value, a.line)
            return value
        return pv.value
