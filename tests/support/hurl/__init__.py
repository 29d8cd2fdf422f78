"""A strict, pure-Python runner for Hurl files (https://hurl.dev/docs/hurl-file.html).

It lets the project's ``hurl/*.hurl`` suites run under pytest without the ``hurl`` binary,
while the same files stay valid for ``hurl --test --variable base_url=...``.

The runner is strict on purpose: anything it does not understand (an unknown section,
query, filter, predicate or option, a malformed line, an undefined variable) is an error
that names the file and line. Nothing is silently ignored.

Semantics follow Hurl:

* entries run in order; the first failing entry stops the file (like ``hurl --test``);
* the implicit ``HTTP <status>`` assert is checked first; if it fails, captures and
  other asserts of that entry are not evaluated;
* captures run before asserts, so asserts can use values captured by the same entry;
* a query that returns nothing (``jsonpath`` on a missing key, a missing header, ...)
  makes every predicate false, so ``exists`` fails and ``not <predicate>`` passes;
* a filter applied to nothing, or a predicate applied to a value of the wrong type
  (``contains`` on a number, ``>`` on a string vs a number), is an error even with ``not``;
* JSONPath returns a single value for a "definite" path (only keys and single indices)
  and a list as soon as it contains a wildcard, a filter, a slice, a union or ``..``;
* ``retry`` re-runs the whole entry (request, captures, asserts) until it passes.
"""

from .errors import HurlError
from .model import ParsedFile
from .parser import parse_text
from .runner import EntryResult, HurlResult, run_file, run_text

__all__ = [
    "EntryResult",
    "HurlError",
    "HurlResult",
    "ParsedFile",
    "parse_text",
    "run_file",
    "run_text",
]
