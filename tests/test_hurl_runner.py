"""Unit tests for the pure-Python Hurl runner in tests/support/hurl.

A small HTTP server runs in a thread for the whole module; every test runs real Hurl
source against it and checks the real outcome (pass/fail, messages, what the server saw).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.hurl import HurlError, HurlResult, parse_text, run_file, run_text

REPO = Path(__file__).resolve().parent.parent

DOC = {
    "status": "healthy",
    "version": "1.2.3",
    "count": 3,
    "ratio": 1.5,
    "whole": 2.0,
    "ok": True,
    "nothing": None,
    "items": [{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}, {"id": 3, "name": "gamma"}],
    "tags": ["x", "y"],
    "empty": [],
    "obj": {"a": 1},
    "emptyObj": {},
    "created": "2024-01-02T03:04:05.123Z",
    "notDate": "2024-01-02",
    "uuid": "3f2b8e2c-5a7d-4c1e-9f0a-1b2c3d4e5f60",
    "csv": "a,b,c",
    "numStr": "42",
    "greeting": "Hello Bob!",
    "nested": '{"inner": {"value": 7}}',
    "ip": "10.0.0.1",
    "paths": {"/health": {"get": {"ok": True}}},
}


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.flaky: dict[str, int] = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # every response carries a Content-Length
    state: _State

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: list[tuple[str, str]] | None = None,
              content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode()
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers or []:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        seen = {
            "method": self.command,
            "path": path,
            "query": urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": raw.decode("utf-8", errors="replace"),
        }
        with self.state.lock:
            self.state.requests.append(seen)

        if path == "/json":
            return self._send(200, DOC, [("X-Request-ID", "req-123")])
        if path == "/health":
            rid = self.headers.get("X-Request-ID") or "generated-id"
            return self._send(200, {"status": "healthy"}, [("X-Request-ID", rid)])
        if path == "/headers":
            return self._send(200, {}, [("Vary", "Accept"), ("Vary", "Origin"),
                                        ("X-Custom", "hello world")])
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return self._send(code, {"code": code, "detail": "x" * 600})
        if path == "/echo":
            return self._send(200, seen)
        if path == "/multipart":
            ctype = self.headers.get("Content-Type", "")
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
            )
            parts = [
                {
                    "name": part.get_param("name", header="content-disposition"),
                    "filename": part.get_filename(),
                    "type": part.get_content_type(),
                    "content": part.get_payload(decode=True).decode(),
                }
                for part in msg.iter_parts()
            ]
            return self._send(200, {"content_type": ctype, "parts": parts})
        if path.startswith("/flaky/"):
            key = path.rsplit("/", 1)[1]
            with self.state.lock:
                self.state.flaky[key] = calls = self.state.flaky.get(key, 0) + 1
            if calls < 3:
                return self._send(503, {"status": "starting", "calls": calls})
            return self._send(200, {"status": "ready", "calls": calls})
        if path == "/tokens":
            body = json.loads(raw or b"{}")
            return self._send(201, {"token": f"tok-{body.get('user', 'anon')}", "id": 42},
                              [("Location", "/items/42")])
        if path == "/text":
            return self._send(200, "hello world 2024-01-02\nsecond line\n",
                              content_type="text/plain; charset=utf-8")
        if path == "/latin":
            return self._send(200, "caf\u00e9".encode("latin-1"),
                              content_type="text/plain; charset=iso-8859-1")
        if path == "/redirect":
            return self._send(302, b"", [("Location", "/json")])
        return self._send(404, {"error": "not found"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class Server:
    def __init__(self, url: str, state: _State) -> None:
        self.url = url
        self.state = state

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests

    def last(self) -> dict[str, Any]:
        return self.state.requests[-1]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    state = _State()
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", state)
    finally:
        httpd.shutdown()
        httpd.server_close()


def run(server: Server, text: str, **variables: Any) -> HurlResult:
    return run_text(text, {"base_url": server.url, **variables}, filename="t.hurl")


# --------------------------------------------------------------------------- passing files


def test_passing_file_runs_every_entry(server: Server) -> None:
    text = """\
# A comment, then a blank line

GET {{base_url}}/json
Accept: application/json  # trailing comment
HTTP 200
Content-Type: application/json
X-Request-ID: req-123
[Asserts]
status == 200
jsonpath "$.status" == "healthy"   # comment after an assert
jsonpath "$.count" == 3
header "X-Request-ID" startsWith "req-"
body contains "\\"version\\": \\"1.2.3\\""

GET {{base_url}}/health
HTTP/1.1 200
"""
    result = run(server, text)
    assert result.passed, result.failures
    assert [(e.line, e.method, e.status) for e in result.entries] == [(3, "GET", 200),
                                                                       (15, "GET", 200)]
    assert result.entries[0].url == f"{server.url}/json"
    assert result.entries[0].duration_ms >= 0
    assert server.requests[-2]["headers"]["accept"] == "application/json"
    result.raise_for_failures()  # no exception


def test_run_file_resolves_base_url_and_multipart_paths(server: Server, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "note.txt").write_text("file body")
    hurl = tmp_path / "upload.hurl"
    hurl.write_text(
        "POST {{base_url}}/multipart\n[MultipartFormData]\nf: file,data/note.txt;\n"
        "HTTP 200\n[Asserts]\njsonpath \"$.parts[0].content\" == \"file body\"\n"
        "jsonpath \"$.parts[0].type\" == \"text/plain\"\n"
    )
    result = run_file(hurl, base_url=server.url)
    assert result.passed, result.failures
    assert result.file == "upload.hurl"


# --------------------------------------------------------------------------- predicates

PREDICATES_PASS = [
    'jsonpath "$.status" == "healthy"',
    'jsonpath "$.count" == 3',
    'jsonpath "$.count" == 3.0',
    'jsonpath "$.whole" == 2',
    'jsonpath "$.ok" == true',
    'jsonpath "$.nothing" == null',
    'jsonpath "$.status" != "degraded"',
    'jsonpath "$.count" != "3"',
    'jsonpath "$.count" > 2',
    'jsonpath "$.count" >= 3',
    'jsonpath "$.ratio" < 1.6',
    'jsonpath "$.ratio" <= 1.5',
    'jsonpath "$.version" > "1.0"',
    'jsonpath "$.status" contains "alth"',
    'jsonpath "$.tags" contains "y"',
    'jsonpath "$.status" startsWith "heal"',
    'jsonpath "$.status" endsWith "thy"',
    'jsonpath "$.created" matches "^\\\\d{4}-"',
    'jsonpath "$.created" matches /^\\d{4}-\\d{2}-\\d{2}T/',
    'jsonpath "$.status" exists',
    'jsonpath "$.missing" not exists',
    'jsonpath "$.items" isCollection',
    'jsonpath "$.obj" isCollection',
    'jsonpath "$.status" isString',
    'jsonpath "$.count" isInteger',
    'jsonpath "$.ratio" isFloat',
    'jsonpath "$.whole" isFloat',
    'jsonpath "$.count" isNumber',
    'jsonpath "$.ratio" isNumber',
    'jsonpath "$.ok" isBoolean',
    'jsonpath "$.empty" isEmpty',
    'jsonpath "$.emptyObj" isEmpty',
    'jsonpath "$.tags" not isEmpty',
    'jsonpath "$.tags" includes "x"',
    'jsonpath "$.items[*].id" includes 2',
    'jsonpath "$.items" isList',
    'jsonpath "$.obj" not isList',
    'jsonpath "$.obj" isObject',
    'jsonpath "$.items" not isObject',
    'jsonpath "$.created" isIsoDate',
    'jsonpath "$.notDate" not isIsoDate',
    'jsonpath "$.uuid" isUuid',
    'jsonpath "$.ip" isIpv4',
    'jsonpath "$.status" not isInteger',
    'jsonpath "$.count" not isString',
    'status == 200',
    'status < 300',
    'header "X-Request-ID" == "req-123"',
    'header "x-request-id" exists',
    'header "X-Nope" not exists',
    'body startsWith "{"',
    'bytes count > 10',
    'duration < 10000',
    'regex "\\"version\\": \\"([0-9.]+)\\"" == "1.2.3"',
    'jsonpath "$.paths[\'/health\'].get.ok" == true',
]

PREDICATES_FAIL = [
    ('jsonpath "$.status" == "degraded"', 'actual "healthy"'),
    ('jsonpath "$.count" == 4', "actual 3"),
    ('jsonpath "$.count" == "3"', "actual 3"),
    ('jsonpath "$.ok" == 1', "actual true"),
    ('jsonpath "$.nothing" != null', "actual null"),
    ('jsonpath "$.count" > 3', "actual 3"),
    ('jsonpath "$.count" >= 4', "actual 3"),
    ('jsonpath "$.ratio" < 1.5', "actual 1.5"),
    ('jsonpath "$.ratio" <= 1.4', "actual 1.5"),
    ('jsonpath "$.status" contains "sick"', 'actual "healthy"'),
    ('jsonpath "$.tags" contains "z"', 'actual ["x", "y"]'),
    ('jsonpath "$.status" startsWith "sick"', 'actual "healthy"'),
    ('jsonpath "$.status" endsWith "sick"', 'actual "healthy"'),
    ('jsonpath "$.status" matches /^\\d+$/', 'actual "healthy"'),
    ('jsonpath "$.missing" exists', "actual none"),
    ('jsonpath "$.status" not exists', 'actual "healthy"'),
    ('jsonpath "$.status" isCollection', 'actual "healthy"'),
    ('jsonpath "$.count" isString', "actual 3"),
    ('jsonpath "$.ratio" isInteger', "actual 1.5"),
    ('jsonpath "$.count" isFloat', "actual 3"),
    ('jsonpath "$.status" isNumber', 'actual "healthy"'),
    ('jsonpath "$.count" isBoolean', "actual 3"),
    ('jsonpath "$.tags" isEmpty', 'actual ["x", "y"]'),
    ('jsonpath "$.tags" includes "z"', 'actual ["x", "y"]'),
    ('jsonpath "$.obj" isList', 'actual {"a": 1}'),
    ('jsonpath "$.items" isObject', "actual ["),
    ('jsonpath "$.notDate" isIsoDate', 'actual "2024-01-02"'),
    ('jsonpath "$.status" isUuid', 'actual "healthy"'),
    ('status == 201', "actual 200"),
    ('header "X-Request-ID" == "other"', 'actual "req-123"'),
    ('header "X-Nope" exists', "actual none"),
    # A missing value fails every positive predicate, not only `exists`.
    ('jsonpath "$.missing" == null', "actual none"),
    ('jsonpath "$.missing" isEmpty', "actual none"),
]


def _one_assert(line: str) -> str:
    return f"GET {{{{base_url}}}}/json\nHTTP 200\n[Asserts]\n{line}\n"


@pytest.mark.parametrize("line", PREDICATES_PASS)
def test_predicate_passes(server: Server, line: str) -> None:
    result = run(server, _one_assert(line))
    assert result.passed, result.failures


@pytest.mark.parametrize(("line", "actual"), PREDICATES_FAIL)
def test_predicate_fails(server: Server, line: str, actual: str) -> None:
    result = run(server, _one_assert(line))
    assert not result.passed
    assert len(result.failures) == 1
    message = result.failures[0]
    assert message.startswith(f"t.hurl:4: assert {line} failed: ")
    assert actual in message


@pytest.mark.parametrize(
    "line",
    [
        'jsonpath "$.count" contains "3"',  # contains on a number
        'jsonpath "$.count" not contains "3"',  # ... an error even when negated
        'jsonpath "$.status" > 3',  # string vs number
        'jsonpath "$.count" matches "3"',  # matches needs a string
        'jsonpath "$.status" includes "h"',  # includes needs a list
        'jsonpath "$.count" isEmpty',
        'jsonpath "$.count" isIsoDate',
    ],
)
def test_type_mismatch_is_an_error_even_negated(server: Server, line: str) -> None:
    result = run(server, _one_assert(line))
    assert not result.passed
    assert "type mismatch" in result.failures[0]
    assert result.failures[0].startswith("t.hurl:4: ")


def test_missing_value_passes_negated_predicates(server: Server) -> None:
    # Hurl: a query with no value makes the predicate false, so `not <pred>` passes.
    text = _one_assert('jsonpath "$.missing" not == 1\njsonpath "$.missing" not contains "x"')
    assert run(server, text).passed


# --------------------------------------------------------------------------- failures


def test_broken_assertion_names_file_line_and_actual_value(server: Server) -> None:
    text = """\
GET {{base_url}}/json
HTTP 200
[Asserts]
jsonpath "$.count" == 3
jsonpath "$.status" == "degraded"
jsonpath "$.version" == "9.9"

GET {{base_url}}/health
HTTP 200
"""
    before = len(server.requests)
    result = run(server, text)
    assert not result.passed
    assert result.failures == [
        't.hurl:5: assert jsonpath "$.status" == "degraded" failed: actual "healthy"',
        't.hurl:6: assert jsonpath "$.version" == "9.9" failed: actual "1.2.3"',
    ]
    # Like `hurl --test`, the first failing entry stops the file.
    assert len(server.requests) == before + 1
    assert len(result.entries) == 1
    with pytest.raises(HurlError) as info:
        result.raise_for_failures()
    assert info.value.failures == result.failures
    assert "t.hurl:5:" in str(info.value) and "t.hurl:6:" in str(info.value)


def test_status_mismatch_names_expected_actual_and_body(server: Server) -> None:
    text = "GET {{base_url}}/status/503\nHTTP 200\n[Asserts]\njsonpath \"$.code\" == 1\n"
    result = run(server, text)
    assert len(result.failures) == 1  # asserts are not evaluated after a status failure
    message = result.failures[0]
    assert message.startswith("t.hurl:2: expected status 200, got 503")
    assert '"code": 503' in message
    body = message.split("body: ", 1)[1]
    assert len(body) == 500


def test_wildcard_status_and_status_asserts(server: Server) -> None:
    text = "GET {{base_url}}/status/418\nHTTP *\n[Asserts]\nstatus >= 400\nstatus < 500\n"
    result = run(server, text)
    assert result.passed, result.failures
    assert result.entries[0].status == 418


def test_version_mismatch_fails(server: Server) -> None:
    result = run(server, "GET {{base_url}}/json\nHTTP/2 200\n")
    assert result.failures == ["t.hurl:2: expected HTTP/2, got HTTP/1.1"]


def test_implicit_header_asserts(server: Server) -> None:
    ok = "GET {{base_url}}/headers\nHTTP 200\nVary: Origin\nX-Custom: hello world\n"
    assert run(server, ok).passed
    bad = "GET {{base_url}}/headers\nHTTP 200\nX-Custom: bye\nX-Absent: 1\n"
    result = run(server, bad)
    assert result.failures == [
        "t.hurl:3: header 'X-Custom: bye' failed: actual \"hello world\"",
        "t.hurl:4: header 'X-Absent: 1' failed: header not found",
    ]


def test_multiple_header_values_form_a_list(server: Server) -> None:
    text = _one_assert("").replace("/json", "/headers") + (
        'header "Vary" count == 2\nheader "Vary" includes "Origin"\nheader "Vary" isList\n'
    )
    assert run(server, text).passed


def test_connection_error_is_a_failure(server: Server) -> None:
    result = run_text("GET http://127.0.0.1:1/nothing\nHTTP 200\n", filename="t.hurl")
    assert len(result.failures) == 1
    assert result.failures[0].startswith("t.hurl:1: GET http://127.0.0.1:1/nothing failed: Connect")


# --------------------------------------------------------------------------- JSONPath


def test_jsonpath_definite_and_collection_results(server: Server) -> None:
    text = _one_assert(
        "\n".join([
            'jsonpath "$.items[0].name" == "alpha"',
            'jsonpath "$.items[-1].name" == "gamma"',
            'jsonpath "$.items[*].name" == "alpha"',
        ])
    )
    result = run(server, text)
    # A wildcard makes a list even with a single match: only the third assert fails.
    assert result.failures == [
        't.hurl:6: assert jsonpath "$.items[*].name" == "alpha" failed: '
        'actual ["alpha", "beta", "gamma"]'
    ]
    text = _one_assert(
        "\n".join([
            'jsonpath "$.items[?(@.id == 2)].name" count == 1',
            'jsonpath "$.items[?(@.id == 2)].name" nth 0 == "beta"',
            'jsonpath "$.items[?(@.id == 9)]" isEmpty',
            'jsonpath "$..name" count == 3',
            'jsonpath "$.items[0:2]" count == 2',
        ])
    )
    assert run(server, text).passed


def test_filter_on_missing_value_is_an_error(server: Server) -> None:
    result = run(server, _one_assert('jsonpath "$.missing" count == 0'))
    assert result.failures == [
        't.hurl:4: assert jsonpath "$.missing" count == 0 failed: '
        "filter 'count' has no input (the query returned no value)"
    ]


def test_jsonpath_on_non_json_body_fails(server: Server) -> None:
    result = run(server, 'GET {{base_url}}/text\nHTTP 200\n[Asserts]\njsonpath "$.a" exists\n')
    assert "response body is not valid JSON" in result.failures[0]
    assert result.failures[0].startswith("t.hurl:4:")


# --------------------------------------------------------------------------- filters


def test_filters(server: Server) -> None:
    text = _one_assert(
        "\n".join([
            'jsonpath "$.items" count == 3',
            'jsonpath "$.items" first isObject',
            'jsonpath "$.items[*].name" first == "alpha"',
            'jsonpath "$.items[*].name" last == "gamma"',
            'jsonpath "$.items[*].name" nth 1 == "beta"',
            'jsonpath "$.items[*].name" nth -1 == "gamma"',
            'jsonpath "$.numStr" toInt == 42',
            'jsonpath "$.numStr" toInt > 41',
            'jsonpath "$.count" toString == "3"',
            'jsonpath "$.ratio" toInt == 1',
            'jsonpath "$.csv" split "," count == 3',
            'jsonpath "$.csv" split "," nth 2 == "c"',
            'jsonpath "$.csv" replace "," ";" == "a;b;c"',
            'jsonpath "$.greeting" regex "Hello (\\\\w+)!" == "Bob"',
            'jsonpath "$.greeting" regex /Hello (\\w+)!/ == "Bob"',
            'jsonpath "$.greeting" replaceRegex /[aeiou]/ "_" == "H_ll_ B_b!"',
            'jsonpath "$.nested" jsonpath "$.inner.value" == 7',
            'jsonpath "$.greeting" urlEncode == "Hello%20Bob%21"',
            'jsonpath "$.tags" count == 2',
            'bytes count > 100',
            'jsonpath "$.version" split "." count == 3',
        ])
    )
    result = run(server, text)
    assert result.passed, result.failures


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('jsonpath "$.status" count == 1', "filter 'count' expects a list or bytes, got string"),
        ('jsonpath "$.tags" nth 5 == "x"', "index 5 out of bounds (size 2)"),
        ('jsonpath "$.empty" first == 1', "index 0 out of bounds (size 0)"),
        ('jsonpath "$.status" toInt == 1', "filter 'toInt' expects a number or an integer string"),
        ('jsonpath "$.items" toString == "x"', "filter 'toString' expects a scalar"),
        ('jsonpath "$.status" jsonpath "$.a" == 1', "filter 'jsonpath': value is not valid JSON"),
    ],
)
def test_filter_errors_name_the_line(server: Server, line: str, message: str) -> None:
    result = run(server, _one_assert(line))
    assert len(result.failures) == 1
    assert result.failures[0].startswith(f"t.hurl:4: assert {line} failed: ")
    assert message in result.failures[0]


def test_regex_filter_without_match_gives_no_value(server: Server) -> None:
    assert run(server, _one_assert('jsonpath "$.status" regex "(zzz)" not exists')).passed


# --------------------------------------------------------------------------- captures


def test_captures_flow_into_later_requests(server: Server) -> None:
    text = """\
POST {{base_url}}/tokens
{
  "user": "bob",
  "scopes": ["read", "write"]
}
HTTP 201
Location: /items/42
[Captures]
token: jsonpath "$.token"
item_id: jsonpath "$.id"
where: header "Location"
code: status
raw: body
suffix: jsonpath "$.token" regex "tok-(\\\\w+)"
[Asserts]
variable "token" == "tok-bob"
variable "item_id" == 42
variable "suffix" == "bob"

GET {{base_url}}/echo
Authorization: Bearer {{token}}
[QueryStringParams]
id: {{item_id}}
where: {{where}}
HTTP 200
[Asserts]
jsonpath "$.headers.authorization" == "Bearer {{token}}"
jsonpath "$.query.id[0]" == "{{item_id}}"
jsonpath "$.query.id[0]" toInt == {{item_id}}
jsonpath "$.query.where[0]" == "/items/42"
"""
    result = run(server, text)
    assert result.passed, result.failures
    first = result.entries[0]
    assert first.captures["token"] == "tok-bob"
    assert first.captures["item_id"] == 42
    assert first.captures["code"] == 201
    assert json.loads(first.captures["raw"])["id"] == 42
    assert server.last()["headers"]["authorization"] == "Bearer tok-bob"
    assert server.last()["query"] == {"id": ["42"], "where": ["/items/42"]}


def test_capture_without_value_fails_the_entry(server: Server) -> None:
    text = 'GET {{base_url}}/json\nHTTP 200\n[Captures]\nx: jsonpath "$.missing"\n'
    result = run(server, text)
    assert result.failures == ['t.hurl:4: capture x: jsonpath "$.missing" failed: no value']


# --------------------------------------------------------------------------- request parts


def test_query_params_are_merged_and_encoded(server: Server) -> None:
    text = """\
GET {{base_url}}/echo?fixed=1
[QueryStringParams]
q: hello world
q: again
sym: a&b=c
HTTP 200
"""
    assert run(server, text).passed
    assert server.last()["query"] == {"fixed": ["1"], "q": ["hello world", "again"],
                                      "sym": ["a&b=c"]}


def test_form_params(server: Server) -> None:
    text = "POST {{base_url}}/echo\n[FormParams]\nuser: bob smith\npass: p&ss\nHTTP 200\n"
    assert run(server, text).passed
    seen = server.last()
    assert seen["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(seen["body"]) == {"user": ["bob smith"], "pass": ["p&ss"]}


def test_multipart_upload(server: Server, tmp_path: Path) -> None:
    (tmp_path / "doc.txt").write_text("hello file")
    (tmp_path / "data.json").write_text('{"a": 1}')
    text = """\
POST {{base_url}}/multipart
[MultipartFormData]
title: My {{kind}}
upload: file,doc.txt;
meta: file,data.json; application/vnd.test+json
HTTP 200
[Captures]
parts: jsonpath "$.parts"
[Asserts]
jsonpath "$.content_type" startsWith "multipart/form-data; boundary="
jsonpath "$.parts" count == 3
"""
    result = run_text(text, {"base_url": server.url, "kind": "doc"}, filename="t.hurl",
                      base_dir=tmp_path)
    assert result.passed, result.failures
    assert "hello file" in server.last()["body"]
    assert result.entries[0].captures["parts"] == [
        {"name": "title", "filename": None, "type": "text/plain", "content": "My doc"},
        {"name": "upload", "filename": "doc.txt", "type": "text/plain", "content": "hello file"},
        {"name": "meta", "filename": "data.json", "type": "application/vnd.test+json",
         "content": '{"a": 1}'},
    ]


def test_multipart_missing_file_names_the_line(server: Server, tmp_path: Path) -> None:
    text = "POST {{base_url}}/multipart\n[MultipartFormData]\nf: file,nope.txt;\nHTTP 200\n"
    result = run_text(text, {"base_url": server.url}, filename="t.hurl", base_dir=tmp_path)
    assert len(result.failures) == 1
    assert result.failures[0].startswith("t.hurl:3: cannot read file 'nope.txt'")


def test_basic_auth(server: Server) -> None:
    text = "GET {{base_url}}/echo\n[BasicAuth]\nbob: s3cret\nHTTP 200\n"
    assert run(server, text).passed
    assert server.last()["headers"]["authorization"] == "Basic Ym9iOnMzY3JldA=="


def test_bodies(server: Server) -> None:
    text = """\
POST {{base_url}}/echo
{"name": "{{name}}", "count": {{count}}, "ok": {{flag}}}
HTTP 200
[Asserts]
jsonpath "$.headers['content-type']" == "application/json"
jsonpath "$.body" jsonpath "$.name" == "say \\"hi\\""
jsonpath "$.body" jsonpath "$.count" == 3
jsonpath "$.body" jsonpath "$.ok" == true

PUT {{base_url}}/echo
Content-Type: text/csv
```
a,b
{{count}},2
```
HTTP 200
[Asserts]
jsonpath "$.body" == "a,b\\n3,2\\n"
jsonpath "$.headers['content-type']" == "text/csv"

PATCH {{base_url}}/echo
```json
{"x": [1, 2]}
```
HTTP 200
[Asserts]
jsonpath "$.headers['content-type']" == "application/json"
jsonpath "$.body" jsonpath "$.x" count == 2

DELETE {{base_url}}/echo
`one line {{count}}`
HTTP 200
[Asserts]
jsonpath "$.body" == "one line 3"
jsonpath "$.method" == "DELETE"
"""
    result = run(server, text, name='say "hi"', count="3", flag="true")
    assert result.passed, result.failures
    assert [e.method for e in result.entries] == ["POST", "PUT", "PATCH", "DELETE"]


def test_response_body_and_multiline_predicate(server: Server) -> None:
    text = """\
GET {{base_url}}/text
HTTP 200
[Asserts]
body == ```
hello world 2024-01-02
second line
```
body matches /\\d{4}-\\d{2}-\\d{2}/
regex /(\\d{4})-\\d{2}/ == "2024"
```
hello world 2024-01-02
second line
```
"""
    assert run(server, text).passed
    bad = "GET {{base_url}}/text\nHTTP 200\n`hello`\n"
    result = run(server, bad)
    assert result.failures[0].startswith('t.hurl:3: body failed: expected "hello", actual "hello')


def test_body_charset_is_respected(server: Server) -> None:
    assert run(server, 'GET {{base_url}}/latin\nHTTP 200\n[Asserts]\nbody == "caf\\u{e9}"\n').passed


def test_redirects_are_not_followed_unless_asked(server: Server) -> None:
    text = "GET {{base_url}}/redirect\nHTTP 302\nLocation: /json\n"
    assert run(server, text).passed
    text = "GET {{base_url}}/redirect\n[Options]\nlocation: true\nHTTP 200\n[Asserts]\n" \
           'url endsWith "/json"\njsonpath "$.status" == "healthy"\n'
    assert run(server, text).passed


# --------------------------------------------------------------------------- templates


def test_templates_and_new_uuid(server: Server) -> None:
    text = """\
GET {{base_url}}/echo?n={{count}}
X-One: {{newUuid}}
X-Two: {{newUuid}}
X-Date: {{newDate}}
X-Pi: {{pi}}
HTTP 200
[Asserts]
jsonpath "$.headers['x-one']" isUuid
jsonpath "$.headers['x-one']" matches /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-/
jsonpath "$.headers['x-date']" isIsoDate
jsonpath "$.query.n[0]" == "{{count}}"
jsonpath "$.headers['x-pi']" == "3.14"
variable "count" == 7
variable "count" isInteger
variable "pi" isFloat
variable "word" isString
variable "quoted" == "12"
variable "flag" == false
"""
    result = run(server, text, count="7", pi="3.14", word="hello", quoted='"12"', flag="false")
    assert result.passed, result.failures
    headers = server.last()["headers"]
    assert headers["x-one"] != headers["x-two"]
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["x-two"])


def test_predicate_value_from_variable_keeps_its_type(server: Server) -> None:
    ok = _one_assert('jsonpath "$.count" == {{n}}\njsonpath "$.count" != "{{n}}"')
    assert run(server, ok, n="3").passed
    assert run(server, ok, n=3).passed


def test_undefined_variable_is_an_error_before_any_request(server: Server) -> None:
    text = """\
GET {{base_url}}/json
HTTP 200
[Captures]
known: jsonpath "$.status"

GET {{base_url}}/echo
X-Known: {{known}}
X-Typo: {{knwon}}
HTTP 200
[Asserts]
jsonpath "$.x" == "{{other}}"
"""
    before = len(server.requests)
    with pytest.raises(HurlError) as info:
        run(server, text)
    assert info.value.failures == [
        "t.hurl:8: undefined variable 'knwon'",
        "t.hurl:11: undefined variable 'other'",
    ]
    assert len(server.requests) == before


def test_options_variable_and_delay(server: Server) -> None:
    text = """\
GET {{base_url}}/echo
[Options]
variable: who=alice
variable: n=5
delay: 1ms
[QueryStringParams]
who: {{who}}
HTTP 200
[Asserts]
jsonpath "$.query.who[0]" == "alice"
variable "n" == 5
"""
    assert run(server, text).passed


# --------------------------------------------------------------------------- retry


def test_retry_eventually_passes(server: Server) -> None:
    text = """\
GET {{base_url}}/flaky/ok
[Options]
retry: 5
retry-interval: 10ms
HTTP 200
[Asserts]
jsonpath "$.status" == "ready"
"""
    result = run(server, text)
    assert result.passed, result.failures
    assert result.entries[0].attempts == 3
    assert server.state.flaky["ok"] == 3


def test_retry_gives_up_after_the_limit(server: Server) -> None:
    text = "GET {{base_url}}/flaky/short\n[Options]\nretry: 1\nretry-interval: 1\nHTTP 200\n"
    result = run(server, text)
    assert result.entries[0].attempts == 2
    assert result.failures[0].startswith("t.hurl:5: expected status 200, got 503")
    assert result.failures[-1] == "t.hurl:1: entry still failing after 2 attempts"


def test_retry_reruns_asserts_not_only_status(server: Server) -> None:
    text = """\
GET {{base_url}}/flaky/asserts
[Options]
retry: 3
retry-interval: 0
HTTP *
[Asserts]
jsonpath "$.calls" >= 3
"""
    result = run(server, text)
    assert result.passed, result.failures
    assert result.entries[0].attempts == 3


# --------------------------------------------------------------------------- strict parsing


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_one_assert('jsonpath "$.a" equals 1'), "t.hurl:4: unknown predicate 'equals' (use '==')"),
        (_one_assert('jsonpath "$.a" isPositive'), "t.hurl:4: unknown filter or predicate"),
        (_one_assert('jsonpath "$.a" length == 1'), "t.hurl:4: unknown filter 'length'"),
        (_one_assert('jsonpath "$.a" toDate "%Y" exists'), "t.hurl:4: filter 'toDate' is not"),
        (_one_assert('xpath "//h1" exists'), "t.hurl:4: query 'xpath' is not supported"),
        (_one_assert('header X exists'), "t.hurl:4: expected a \"quoted string\" after header"),
        (_one_assert('jsonpath "$.a" == 1 extra'), "t.hurl:4: unexpected 'extra'"),
        (_one_assert('jsonpath "$.a" =='), "t.hurl:4: expected a value after '=='"),
        (_one_assert('jsonpath "$.a" == "x\\d"'), "t.hurl:4: invalid escape sequence"),
        (_one_assert('jsonpath "$.a" contains /x/'), "t.hurl:4: a /regex/ value is only"),
        (_one_assert('jsonpath "a.b" exists'), "t.hurl:4: invalid JSONPath"),
        (_one_assert('jsonpath "$.a" matches "("'), "t.hurl:4: invalid regex"),
        (_one_assert("jsonpath \"$.a\" == 'x'"), "t.hurl:4: invalid predicate value"),
        ("GET {{base_url}}/json\nHTTP 200\n[Assert]\nstatus == 200\n",
         "t.hurl:3: unknown section [Assert]"),
        ("GET {{base_url}}/json\n[Asserts]\nstatus == 200\n",
         "t.hurl:2: section [Asserts] is only allowed after the 'HTTP' line"),
        ("GET {{base_url}}/json\nHTTP 200\n[QueryStringParams]\na: 1\n",
         "t.hurl:3: section [QueryStringParams] must come before the 'HTTP' line"),
        ("GET {{base_url}}/json\n[Options]\ninsecure: true\nHTTP 200\n",
         "t.hurl:3: unknown or unsupported option 'insecure'"),
        ("GET {{base_url}}/json\n[Options]\nretry: often\nHTTP 200\n",
         "t.hurl:3: option retry expects an integer"),
        ("GET {{base_url}}/json\n[Options]\nretry-interval: 1h\nHTTP 200\n",
         "t.hurl:3: option retry-interval expects a duration"),
        ("GET {{base_url}}/json\n[Cookies]\na: b\nHTTP 200\n", "t.hurl:2: [Cookies] is not"),
        ("GET {{base_url}}/json\nnot a header\nHTTP 200\n", "t.hurl:2: malformed line"),
        ("GET {{base_url}}/json\nHTTP 200\n[Asserts]\nstatus == 200\n[Asserts]\n",
         "t.hurl:5: duplicate section [Asserts]"),
        ("GET {{base_url}}/json\nHTTP/* 200\n", "t.hurl:2: unknown HTTP version 'HTTP/*'"),
        ("GET {{base_url}}/json\nHTTP 200 OK\n", "t.hurl:2: malformed status '200 OK'"),
        ("FETCH {{base_url}}/json\n", "t.hurl:1: unknown HTTP method 'FETCH'"),
        ("\n# comment\nhello\n", "t.hurl:3: expected a request line"),
        ("POST {{base_url}}/json\n{\"a\": 1,}\nHTTP 200\n", "t.hurl:2: invalid JSON body"),
        ("POST {{base_url}}/json\n{\"a\": [1, 2\nHTTP 200\n", "t.hurl:2: unterminated JSON body"),
        ("POST {{base_url}}/json\n{\"a\": 1}\nX-After: 1\n",
         "t.hurl:3: unexpected line after the body"),
        ("POST {{base_url}}/json\n```\nabc\n", "t.hurl:2: unterminated ``` multiline string"),
        ("POST {{base_url}}/json\n```xml\n<a/>\n```\n", "t.hurl:2: unsupported multiline"),
        ("POST {{base_url}}/json\nfile,body.bin;\n", "t.hurl:2: file,...; bodies are not"),
        ("GET {{base_url}}/json\nX-A: {{ a b }}\n", "t.hurl:2: invalid placeholder"),
        ("GET {{base_url}}/json\nHTTP 200\n[Captures]\nx jsonpath \"$.a\"\n",
         "t.hurl:4: malformed capture"),
        ("GET {{base_url}}/json\nHTTP 200\n[Captures]\nx: jsonpath \"$.a\" exists\n",
         "t.hurl:4: unexpected 'exists' after the capture"),
    ],
)
def test_strict_parse_errors_name_the_line(server: Server, text: str, message: str) -> None:
    before = len(server.requests)
    with pytest.raises(HurlError) as info:
        run(server, text)
    assert str(info.value).startswith(message), str(info.value)
    assert len(server.requests) == before  # nothing was sent


def test_parse_errors_are_raised_for_every_entry_before_running(server: Server) -> None:
    text = "GET {{base_url}}/json\nHTTP 200\n\nGET {{base_url}}/json\nHTTP 200\n[Nope]\n"
    before = len(server.requests)
    with pytest.raises(HurlError, match=r"^t\.hurl:6: unknown section \[Nope\]$"):
        run(server, text)
    assert len(server.requests) == before


def test_unescaped_hash_starts_a_comment_in_values(server: Server) -> None:
    text = "GET {{base_url}}/echo\nX-A: one#two\nX-B: one\\#two\nHTTP 200\n"
    assert run(server, text).passed
    assert server.last()["headers"]["x-a"] == "one"
    assert server.last()["headers"]["x-b"] == "one#two"


def test_entry_without_response_section_just_sends(server: Server) -> None:
    result = run(server, "HEAD {{base_url}}/json\n\nOPTIONS {{base_url}}/json\n")
    assert result.passed
    assert [e.status for e in result.entries] == [200, 200]


# --------------------------------------------------------------------------- repository files


@pytest.mark.parametrize("path", sorted((REPO / "hurl").glob("*.hurl")), ids=lambda p: p.name)
def test_repository_hurl_files_parse(path: Path) -> None:
    parsed = parse_text(path.read_text(encoding="utf-8"), path.name)
    assert parsed.entries, f"{path.name} has no entries"
    for entry in parsed.entries:
        assert entry.response is not None
