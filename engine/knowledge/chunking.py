"""Split a parsed document into chunks for embedding.

Every chunker has the signature `(doc, settings, *, metadata=None) -> list[ChunkText]`
and `chunk()` picks one by `settings.strategy`:

- `fixed`: windows of `size` characters (or tokens with `unit="tokens"`), each
  starting `size - overlap` after the previous one; no regard for words.
- `sentence`: whole sentences packed up to `size`; a longer sentence is split at words.
- `paragraph`: whole paragraphs (blank-line separated) packed up to `size`; a longer
  one is split at lines, then sentences, then words.
- `recursive`: like LangChain's recursive splitter: a region over `size` is split at
  headings, then paragraphs, lines, sentences, words and finally characters, and the
  pieces of each level are packed up to `size`.
- `token`: windows of `size` tiktoken `cl100k_base` tokens with `overlap` tokens.

Sizes are in `unit`s (`chars` or `tokens`; `token` always counts tokens, on the
document's token sequence). The packing strategies measure the real slice of the
document a chunk covers, separators included, so no chunk exceeds `size`
(only a single token longer than `size` characters could). Overlap repeats the
last whole pieces (sentences, paragraphs...) of a chunk, up to `overlap` units, at
the start of the next.

`doc.text[c.start_offset:c.end_offset] == c.text` for every chunk: chunk texts are
slices of the document, trimmed of surrounding whitespace, never rewritten. Each
chunk's metadata is the document's metadata, then the caller's (the caller wins),
then `chunk_index`, `total_chunks`, `start_offset` and `end_offset`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.knowledge.parsing import ParsedDocument
from engine.tokens import get_encoding

Strategy = Literal["fixed", "sentence", "paragraph", "recursive", "token"]
Unit = Literal["chars", "tokens"]
TOKEN_ENCODING = "cl100k_base"  # noqa: S105 (a tokeniser, not a secret)

Span = tuple[int, int]


class ChunkingSettings(BaseModel):
    """How to chunk. Bounds match `engine.schemas.knowledge.ChunkingSpec`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy = "recursive"
    size: int = Field(1000, ge=16, le=100_000, description="Target maximum, in `unit`s")
    overlap: int = Field(100, ge=0, le=50_000, description="In `unit`s; smaller than size")
    unit: Unit = Field("chars", description="Ignored by `token`, which counts tokens")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self

    @property
    def effective_unit(self) -> Unit:
        return "tokens" if self.strategy == "token" else self.unit


@dataclass(slots=True)
class ChunkText:
    text: str
    chunk_index: int
    total_chunks: int
    start_offset: int
    end_offset: int
    metadata: dict[str, Any] = field(default_factory=dict)


# --- measuring -------------------------------------------------------------------------------

class _Measure:
    """Length of a slice of the text in the settings' unit."""

    def __init__(self, text: str, unit: Unit):
        self.text = text
        self.tokens = unit == "tokens"
        self._encoding = get_encoding(TOKEN_ENCODING) if self.tokens else None

    def __call__(self, start: int, end: int) -> int:
        if self._encoding is None:
            return end - start
        return len(self._encoding.encode_ordinary(self.text[start:end]))

    def token_windows(self, start: int, end: int, size: int, overlap: int) -> list[Span]:
        """Windows of `size` tokens (stepping `size - overlap`) over text[start:end]."""
        encoding = self._encoding or get_encoding(TOKEN_ENCODING)
        tokens = encoding.encode_ordinary(self.text[start:end])
        if not tokens:
            return []
        _decoded, offsets = encoding.decode_with_offsets(tokens)
        spans: list[Span] = []
        step = size - overlap
        index = 0
        while True:
            stop = index + size
            first = start + offsets[index]
            last = start + offsets[stop] if stop < len(tokens) else end
            spans.append((first, last))
            if stop >= len(tokens):
                break
            index += step
        return spans


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _split_at(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[Span]:
    """text[start:end] cut at every match of `pattern` (the matches dropped), trimmed."""
    spans: list[Span] = []
    position = start
    for match in pattern.finditer(text, start, end):
        piece = _trim(text, position, match.start())
        if piece:
            spans.append(piece)
        position = match.end()
    piece = _trim(text, position, end)
    if piece:
        spans.append(piece)
    return spans


def _split_before(text: str, start: int, end: int, cuts: list[int]) -> list[Span]:
    """text[start:end] cut just before each position in `cuts` (headings), trimmed."""
    spans: list[Span] = []
    position = start
    for cut in cuts:
        if start < cut < end:
            piece = _trim(text, position, cut)
            if piece:
                spans.append(piece)
            position = cut
    piece = _trim(text, position, end)
    if piece:
        spans.append(piece)
    return spans


# --- sentences -------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset("""
mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e eg ie inc ltd co corp llc no nos fig figs
al approx dept est vol vols ed eds pp p cf viz ca jan feb mar apr jun jul aug sep sept oct
nov dec mon tue wed thu fri sat sun u.s u.k a.m p.m ph.d gen col lt sgt rev hon
""".split())
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_LINE_BREAK = re.compile(r"\n\s*")
_WHITESPACE = re.compile(r"\s+")
_CLOSERS = "\"')]\u201d\u2019"  # quotes and brackets that may follow a full stop
_CJK_STOPS = "\u3002\uff01\uff1f"  # ideographic full stop, fullwidth ! and ?
_SENTENCE_END = re.compile(
    "[.!?\u2026]+[" + re.escape(_CLOSERS) + "]*(?=\\s)"
    "|[" + _CJK_STOPS + "]+[\u300d\u300f\u201d\u2019)]*")


def _is_boundary(text: str, match: re.Match[str], end: int) -> bool:
    mark = match.group()
    if mark[0] in _CJK_STOPS:
        return True
    following = text[match.end():end].lstrip()
    if not following:
        return True
    if mark.startswith(".") and len(mark.rstrip(_CLOSERS)) == 1:
        word_start = match.start()
        while word_start > 0 and not text[word_start - 1].isspace():
            word_start -= 1
        word = text[word_start:match.start()].lstrip("([\"'\u201c\u2018").lower()
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return False
    # A sentence starts with a capital, a digit, a quote or bracket, or a non-cased letter.
    first = following[0]
    return not first.islower()


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of text[start:end], trimmed: a regex splitter (no model, no
    network) that knows common abbreviations and initials; blank lines end sentences."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    for paragraph_start, paragraph_end in _split_at(text, start, end, _PARAGRAPH_BREAK):
        position = paragraph_start
        for match in _SENTENCE_END.finditer(text, paragraph_start, paragraph_end):
            if _is_boundary(text, match, paragraph_end):
                piece = _trim(text, position, match.end())
                if piece:
                    spans.append(piece)
                position = match.end()
        piece = _trim(text, position, paragraph_end)
        if piece:
            spans.append(piece)
    return spans


# --- the splitter ---------------------------------------------------------------------------

_HEADING_LINE = re.compile(r"^#{1,6}[ \t]+\S", re.MULTILINE)


def _heading_starts(doc: ParsedDocument) -> list[int]:
    starts = {start for (kind, _), (start, end) in zip(doc.elements, doc.element_spans,
                                                       strict=False)
              if kind == "Title" and end > start}
    starts.update(match.start() for match in _HEADING_LINE.finditer(doc.text))
    return sorted(starts)


class _Splitter:
    def __init__(self, doc: ParsedDocument, settings: ChunkingSettings):
        self.text = doc.text
        self.size = settings.size
        self.overlap = settings.overlap
        self.measure = _Measure(doc.text, settings.effective_unit)
        self._headings = _heading_starts(doc)

    # One function per level: region -> pieces (not yet size-checked).
    def headings(self, start: int, end: int) -> list[Span]:
        return _split_before(self.text, start, end, self._headings)

    def paragraphs(self, start: int, end: int) -> list[Span]:
        return _split_at(self.text, start, end, _PARAGRAPH_BREAK)

    def lines(self, start: int, end: int) -> list[Span]:
        return _split_at(self.text, start, end, _LINE_BREAK)

    def sentences(self, start: int, end: int) -> list[Span]:
        return split_sentences(self.text, start, end)

    def words(self, start: int, end: int) -> list[Span]:
        return _split_at(self.text, start, end, _WHITESPACE)

    def hard(self, start: int, end: int) -> list[Span]:
        """Last resort for one over-long word: fixed windows, no overlap."""
        if self.measure.tokens:
            windows = self.measure.token_windows(start, end, self.size, 0)
        else:
            windows = [(i, min(i + self.size, end)) for i in range(start, end, self.size)]
        return [span for s, e in windows if (span := _trim(self.text, s, e))]

    def fits(self, span: Span) -> bool:
        return self.measure(*span) <= self.size

    def atoms(self, span: Span, levels: list[Callable[[int, int], list[Span]]]) -> list[Span]:
        """`span` broken down level by level until every piece fits."""
        if self.fits(span):
            return [span]
        if not levels:
            return self.hard(*span)
        pieces = levels[0](*span)
        if pieces == [span]:  # this level cannot split it: try the next
            return self.atoms(span, levels[1:])
        out: list[Span] = []
        for piece in pieces:
            out.extend(self.atoms(piece, levels[1:]))
        return out

    def merge(self, pieces: list[Span]) -> list[Span]:
        """Pack consecutive pieces into chunks of at most `size`, repeating up to
        `overlap` units of trailing whole pieces at the start of the next chunk."""
        chunks: list[Span] = []
        current: list[Span] = []
        for piece in pieces:
            if current and self.measure(current[0][0], piece[1]) > self.size:
                chunks.append((current[0][0], current[-1][1]))
                while current and (
                    self.measure(current[0][0], current[-1][1]) > self.overlap
                    or self.measure(current[0][0], piece[1]) > self.size
                ):
                    current.pop(0)
            current.append(piece)
        if current:
            chunks.append((current[0][0], current[-1][1]))
        return chunks

    def recursive(self, span: Span, levels: list[Callable[[int, int], list[Span]]]
                  ) -> list[Span]:
        """LangChain's algorithm: split at the first level; pack runs of pieces that
        fit; recurse with the next levels into each piece that does not."""
        if self.fits(span):
            return [span]
        if not levels:
            return self.hard(*span)
        pieces = levels[0](*span)
        if pieces == [span]:
            return self.recursive(span, levels[1:])
        chunks: list[Span] = []
        run: list[Span] = []
        for piece in pieces:
            if self.fits(piece):
                run.append(piece)
                continue
            chunks.extend(self.merge(run))
            run = []
            chunks.extend(self.recursive(piece, levels[1:]))
        chunks.extend(self.merge(run))
        return chunks


# --- strategies ------------------------------------------------------------------------------

def _finish(doc: ParsedDocument, spans: list[Span],
            metadata: Mapping[str, Any] | None) -> list[ChunkText]:
    trimmed = [span for s, e in spans if (span := _trim(doc.text, s, e))]
    base = {**doc.metadata, **(metadata or {})}
    total = len(trimmed)
    return [
        ChunkText(text=doc.text[start:end], chunk_index=index, total_chunks=total,
                  start_offset=start, end_offset=end,
                  metadata={**base, "chunk_index": index, "total_chunks": total,
                            "start_offset": start, "end_offset": end})
        for index, (start, end) in enumerate(trimmed)
    ]


def _whole(doc: ParsedDocument) -> Span | None:
    return _trim(doc.text, 0, len(doc.text))


def chunk_fixed(doc: ParsedDocument, settings: ChunkingSettings, *,
                metadata: Mapping[str, Any] | None = None) -> list[ChunkText]:
    if settings.effective_unit == "tokens":
        return chunk_token(doc, settings, metadata=metadata)
    text, size, step = doc.text, settings.size, settings.size - settings.overlap
    spans: list[Span] = []
    start = 0
    while start < len(text):
        spans.append((start, min(start + size, len(text))))
        if start + size >= len(text):
            break
        start += step
    return _finish(doc, spans, metadata)


def chunk_token(doc: ParsedDocument, settings: ChunkingSettings, *,
                metadata: Mapping[str, Any] | None = None) -> list[ChunkText]:
    measure = _Measure(doc.text, "tokens")
    spans = measure.token_windows(0, len(doc.text), settings.size, settings.overlap)
    return _finish(doc, spans, metadata)


def chunk_sentence(doc: ParsedDocument, settings: ChunkingSettings, *,
                   metadata: Mapping[str, Any] | None = None) -> list[ChunkText]:
    splitter = _Splitter(doc, settings)
    atoms: list[Span] = []
    for sentence in split_sentences(doc.text):
        atoms.extend(splitter.atoms(sentence, [splitter.words]))
    return _finish(doc, splitter.merge(atoms), metadata)


def chunk_paragraph(doc: ParsedDocument, settings: ChunkingSettings, *,
                    metadata: Mapping[str, Any] | None = None) -> list[ChunkText]:
    splitter = _Splitter(doc, settings)
    whole = _whole(doc)
    if whole is None:
        return []
    atoms: list[Span] = []
    for paragraph in splitter.paragraphs(*whole):
        atoms.extend(splitter.atoms(paragraph, [splitter.lines, splitter.sentences,
                                                splitter.words]))
    return _finish(doc, splitter.merge(atoms), metadata)


def chunk_recursive(doc: ParsedDocument, settings: ChunkingSettings, *,
                    metadata: Mapping[str, Any] | None = None) -> list[ChunkText]:
    splitter = _Splitter(doc, settings)
    whole = _whole(doc)
    if whole is None:
        return []
    levels = [splitter.headings, splitter.paragraphs, splitter.lines, splitter.sentences,
              splitter.words]
    return _finish(doc, splitter.recursive(whole, levels), metadata)


Chunker = Callable[..., list[ChunkText]]
CHUNKERS: dict[str, Chunker] = {
    "fixed": chunk_fixed,
    "sentence": chunk_sentence,
    "paragraph": chunk_paragraph,
    "recursive": chunk_recursive,
    "token": chunk_token,
}


def chunk(doc: ParsedDocument, settings: ChunkingSettings | None = None, *,
          metadata: Mapping[str, Any] | None = None) -> list[ChunkText]:
    """Chunks of `doc` by `settings.strategy` (default: recursive, 1000 chars, 100 overlap)."""
    settings = settings or ChunkingSettings()
    return CHUNKERS[settings.strategy](doc, settings, metadata=metadata)


async def chunk_async(doc: ParsedDocument, settings: ChunkingSettings | None = None, *,
                      metadata: Mapping[str, Any] | None = None) -> list[ChunkText]:
    """`chunk` in a worker thread: token counting on a long document takes about a
    second per MB, too long to block the event loop."""
    return await asyncio.to_thread(chunk, doc, settings, metadata=metadata)
