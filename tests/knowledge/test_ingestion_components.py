"""Ingestion components: parse -> chunk -> embed, offline.

Sample documents live in tests/data/ (the DOCX was written with python-docx);
the PDF is written here by hand (`minimal_pdf`) so no PDF library is needed to
make it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.errors import InvalidRequest, UnsupportedMediaType, UpstreamError
from engine.knowledge.chunking import (
    ChunkingSettings,
    ChunkText,
    chunk,
    chunk_async,
    split_sentences,
)
from engine.knowledge.embedding import Embedder, GatewayEmbedder, LocalMiniLM
from engine.knowledge.parsing import ParsedDocument, detect_format, parse, parse_async
from engine.schemas.chat import EmbeddingRequest
from engine.tokens import count_tokens

DATA = Path(__file__).resolve().parent.parent / "data"
ROOT = DATA.parent.parent


def minimal_pdf(pages: list[list[str]], *, title: str | None = None,
                author: str | None = None, created: str | None = None) -> bytes:
    """A valid PDF 1.4 with one Helvetica text line per string (about 1 KB)."""
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, lines in enumerate(pages):
        operators = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        operators += [f"({escape(line)}) Tj T*" for line in lines]
        stream = "\n".join([*operators, "ET"]).encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                       f"<< /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    info = [f"/Title ({escape(title)})" if title else "",
            f"/Author ({escape(author)})" if author else "",
            f"/CreationDate ({created})" if created else ""]
    objects.append(f"<< {' '.join(info)} >>".encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


SAMPLE_PDF = minimal_pdf(
    [["Deep Sea Creatures", "Anglerfish hunt in the dark water of the deep ocean."],
     ["Giant squid have the largest eyes of any animal."]],
    title="Deep Sea Life", author="Sylvia Earle", created="D:20230415120000Z")


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --- parsing -----------------------------------------------------------------------------------

def test_parse_txt() -> None:
    doc = parse(sample("sample.txt"), filename="sample.txt", content_type="text/plain")
    assert ("Title", "Field Guide to River Otters") in doc.elements
    assert ("ListItem", "Otters can hold their breath for eight minutes.") in doc.elements
    assert any(kind == "NarrativeText" and "freshwater rivers" in text
               for kind, text in doc.elements)
    assert doc.metadata["filename"] == "sample.txt"
    assert doc.metadata["content_type"] == "text/plain"


def test_parse_markdown() -> None:
    # Browsers send text/plain for .md: the name decides.
    doc = parse(sample("sample.md"), filename="sample.md", content_type="text/plain")
    assert doc.metadata["format"] == "md"
    assert doc.metadata["title"] == "Mountain Weather Handbook"
    kinds = dict((text, kind) for kind, text in doc.elements)
    assert kinds["Thunderstorms"] == "Title"
    assert kinds["Start hiking at dawn."] == "ListItem"
    assert ("Table", "Month | Storm days\nJuly | 12\nAugust | 9") in doc.elements
    assert "#" not in doc.text and "|---" not in doc.text


def test_parse_html() -> None:
    doc = parse(sample("sample.html"), filename="bread.html", content_type=None)
    assert doc.metadata["title"] == "Baking Sourdough Bread"
    assert doc.metadata["author"] == "Ada Baker"
    assert doc.metadata["created"] == "2024-03-05T10:00:00Z"
    assert doc.metadata["content_type"] == "text/html"
    assert ("Title", "Shaping the loaf") in doc.elements
    assert ("ListItem", "Bake the loaf in a covered pot.") in doc.elements
    assert "should not appear" not in doc.text and "color: red" not in doc.text


def test_parse_json_flattens_with_key_paths() -> None:
    doc = parse(sample("sample.json"), filename="facts.json", content_type="application/json")
    lines = doc.text.splitlines()
    assert "planets[1].name: Jupiter" in lines
    assert "planets[0].rocky: true" in lines
    assert "star.notes: null" in lines
    assert "tags: []" in lines
    assert doc.metadata["title"] == "Solar System Facts"
    assert doc.metadata["author"] == "Vera Rubin"


def test_parse_csv() -> None:
    doc = parse(sample("sample.csv"), filename="cities.csv", content_type="text/csv")
    assert doc.text.splitlines()[0] == "city | country | population"
    assert "city: Oslo, city centre | country: Norway | population: 709000" in doc.text
    assert doc.metadata["row_count"] == 3
    assert doc.metadata["columns"] == ["city", "country", "population"]


def test_parse_docx() -> None:
    doc = parse(sample("sample.docx"), filename="garden.docx", content_type=None)
    assert doc.metadata["title"] == "Quarterly Garden Report"
    assert doc.metadata["author"] == "Grace Gardener"
    assert doc.metadata["created"].startswith("2024-01-02T03:04:05")
    assert doc.metadata["modified"].startswith("2024-02-03T04:05:06")
    assert doc.elements[0] == ("Title", "Quarterly Garden Report")
    assert ("ListItem", "Slugs damaged the young lettuce.") in doc.elements
    assert ("Table", "Crop | Kilograms\nTomatoes | 42") in doc.elements


def test_parse_pdf() -> None:
    assert len(SAMPLE_PDF) < 20_000
    doc = parse(SAMPLE_PDF, filename="sea.pdf", content_type="application/pdf")
    assert "Anglerfish hunt in the dark water" in doc.text
    assert "largest eyes" in doc.text
    assert doc.metadata["title"] == "Deep Sea Life"
    assert doc.metadata["author"] == "Sylvia Earle"
    assert doc.metadata["created"] == "2023-04-15T12:00:00"
    assert doc.metadata["page_count"] == 2


def test_element_spans_index_the_text() -> None:
    for name in ("sample.txt", "sample.md", "sample.html", "sample.docx", "sample.csv"):
        doc = parse(sample(name), filename=name, content_type=None)
        assert len(doc.element_spans) == len(doc.elements)
        for (_kind, text), (start, end) in zip(doc.elements, doc.element_spans, strict=True):
            assert doc.text[start:end] == text


def test_format_detection() -> None:
    assert detect_format(SAMPLE_PDF, None, None) == "pdf"
    assert detect_format(sample("sample.docx"), None, "application/octet-stream") == "docx"
    assert detect_format(b"hello", None, None) == "txt"
    assert detect_format(b"{}", "x.json", "text/plain; charset=utf-8") == "json"


def test_unsupported_types_name_the_type() -> None:
    with pytest.raises(InvalidRequest, match="image/png"):
        parse(b"\x89PNG....", filename="x.png", content_type="image/png")
    with pytest.raises(UnsupportedMediaType, match=r"\.xlsx"):
        parse(b"PK\x03\x04", filename="book.xlsx", content_type=None)
    with pytest.raises(InvalidRequest, match="empty"):
        parse(b"", filename="nothing.txt", content_type=None)


@pytest.mark.parametrize(("data", "name", "complaint"), [
    (b"PK\x03\x04 this is not a zip", "report.docx", "report.docx"),
    (b"%PDF-1.4\nnot really a pdf", "broken.pdf", "broken.pdf"),
    (b'{"unterminated": ', "data.json", "data.json"),
])
def test_corrupt_files_name_the_file(data: bytes, name: str, complaint: str) -> None:
    with pytest.raises(InvalidRequest, match=complaint) as info:
        parse(data, filename=name, content_type=None)
    assert info.value.code == "unparseable_document"
    assert ":" in info.value.message.split(complaint, 1)[1]  # the parser's complaint follows


async def test_parse_async_runs_in_a_thread() -> None:
    loop_thread = asyncio.get_running_loop()
    doc = await parse_async(sample("sample.md"), filename="sample.md", content_type=None)
    assert doc.metadata["title"] == "Mountain Weather Handbook"
    assert loop_thread.is_running()


OFFLINE_SCRIPT = textwrap.dedent("""
    import json, socket, sys
    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network disabled in this test")
    real_connect = socket.socket.connect
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            refuse(address)
        return real_connect(self, address)
    socket.socket.connect = connect
    socket.socket.connect_ex = connect
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from tests.knowledge.test_ingestion_components import SAMPLE_PDF
    from engine.knowledge import parsing
    from engine.knowledge.chunking import ChunkingSettings, chunk
    from engine.knowledge.embedding import LocalMiniLM
    import asyncio
    import unstructured.nlp.tokenize as tokenize

    results = {}
    files = {p.name: p.read_bytes() for p in Path(sys.argv[2]).iterdir()}
    files["sample.pdf"] = SAMPLE_PDF
    for name, data in sorted(files.items()):
        doc = parsing.parse(data, filename=name, content_type=None)
        pieces = chunk(doc, ChunkingSettings(strategy="token", size=32, overlap=4))
        results[name] = {"chars": len(doc.text), "elements": len(doc.elements),
                         "chunks": len(pieces)}
    vectors = asyncio.run(LocalMiniLM().embed(["offline", "embedding"]))
    print(json.dumps({
        "attempts": attempts, "results": results, "dims": len(vectors[0]),
        "spacy_loaded": parsing._spacy_model is not None,
        "wired": tokenize._get_nlp is parsing.load_spacy_model,
    }))
""")


def test_parsing_chunking_and_embedding_work_offline(tmp_path: Path) -> None:
    """In a fresh process with every TCP/UDP connection and DNS lookup refused and
    recorded: all formats parse (spaCy model loaded from the installed package),
    token chunking and the local model work, and nothing tried the network."""
    env = {k: v for k, v in os.environ.items() if k not in ("SCARF_NO_ANALYTICS", "DO_NOT_TRACK")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TIKTOKEN_CACHE_DIR=str(tmp_path / "tiktoken"), HOME=str(tmp_path))
    process = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, str(ROOT), str(DATA)],
        capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert report["attempts"] == []
    assert report["spacy_loaded"] and report["wired"]
    assert report["dims"] == 384
    assert set(report["results"]) == {"sample.csv", "sample.docx", "sample.html",
                                      "sample.json", "sample.md", "sample.pdf", "sample.txt"}
    for name, result in report["results"].items():
        assert result["chars"] > 50 and result["elements"] > 0 and result["chunks"] > 0, name


# --- chunking ----------------------------------------------------------------------------------

LONG_TEXT = "\n\n".join([
    "Chapter One",
    "The river starts high in the mountains. It gathers melt water from the glaciers. "
    "Dr. Jones measured its flow in 1998, e.g. during the spring floods! Was it fast? "
    "It was faster than anyone expected.",
    "Short paragraph.",
    "Chapter Two",
    " ".join(f"Sentence number {i} describes the valley floor and the villages along it."
             for i in range(40)),
    "A" * 300 + " tail words after a very long token.",
    "Closing remarks: the river reaches the sea after three hundred kilometres.",
])
LONG_DOC = ParsedDocument(
    text=LONG_TEXT,
    elements=[("Title" if p.startswith("Chapter") else "NarrativeText", p)
              for p in LONG_TEXT.split("\n\n")],
    metadata={"title": "River", "author": "A. Writer", "filename": "river.txt"})


def length(text: str, unit: str) -> int:
    return count_tokens(text) if unit == "tokens" else len(text)


def check_invariants(doc: ParsedDocument, pieces: list[ChunkText], config: ChunkingSettings,
                     *, slack: int = 0) -> None:
    assert pieces, "no chunks"
    unit = config.effective_unit
    for index, piece in enumerate(pieces):
        assert piece.chunk_index == index
        assert piece.total_chunks == len(pieces)
        assert doc.text[piece.start_offset:piece.end_offset] == piece.text
        assert piece.text == piece.text.strip() and piece.text
        assert length(piece.text, unit) <= config.size + slack, (index, piece.text)
        assert piece.metadata["chunk_index"] == index
        assert piece.metadata["total_chunks"] == len(pieces)
        assert (piece.metadata["start_offset"], piece.metadata["end_offset"]) == (
            piece.start_offset, piece.end_offset)
    starts = [p.start_offset for p in pieces]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    covered = [False] * len(doc.text)
    for piece in pieces:
        for i in range(piece.start_offset, piece.end_offset):
            covered[i] = True
    missing = [i for i, ch in enumerate(doc.text) if not ch.isspace() and not covered[i]]
    assert not missing, f"text not in any chunk at {missing[:5]}"


STRATEGIES = ["fixed", "sentence", "paragraph", "recursive", "token"]


@pytest.mark.parametrize("unit", ["chars", "tokens"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_chunkers_respect_size_offsets_and_indices(strategy: str, unit: str) -> None:
    size, overlap = (200, 40) if unit == "chars" else (40, 8)
    config = ChunkingSettings(strategy=strategy, size=size, overlap=overlap, unit=unit)
    pieces = chunk(LONG_DOC, config)
    # A token window re-encoded on its own may tokenise its first word differently.
    check_invariants(LONG_DOC, pieces, config, slack=1 if config.effective_unit == "tokens" else 0)
    assert len(pieces) > 3


def test_fixed_chunks_overlap_by_exactly_overlap() -> None:
    doc = ParsedDocument(text="".join(chr(ord("a") + i % 26) for i in range(1000)))
    pieces = chunk(doc, ChunkingSettings(strategy="fixed", size=100, overlap=30))
    assert [p.start_offset for p in pieces] == list(range(0, 911, 70))
    assert all(len(p.text) == 100 for p in pieces[:-1])
    assert pieces[-1].end_offset == 1000
    for before, after in itertools.pairwise(pieces):
        assert before.end_offset - after.start_offset == 30


def test_token_chunks_overlap_in_tokens() -> None:
    doc = ParsedDocument(text=" ".join(f"word{i}" for i in range(300)))
    pieces = chunk(doc, ChunkingSettings(strategy="token", size=50, overlap=10))
    assert all(count_tokens(p.text) <= 50 for p in pieces)
    for before, after in itertools.pairwise(pieces):
        shared = doc.text[after.start_offset:before.end_offset]
        assert 8 <= count_tokens(shared) <= 11


def test_sentence_chunks_keep_whole_sentences_and_overlap() -> None:
    config = ChunkingSettings(strategy="sentence", size=200, overlap=90)
    pieces = chunk(LONG_DOC, config)
    spans = split_sentences(LONG_TEXT)
    starts = {s for s, _e in spans}
    too_long = [(s, e) for s, e in spans if e - s > 200]
    assert len(too_long) == 1  # the "AAAA..." one, split at words and then hard
    for piece in pieces:
        # chunks start at a sentence start, unless inside the one over-long sentence
        assert piece.start_offset in starts or too_long[0][0] <= piece.start_offset \
            < too_long[0][1]
    overlapping = [(a, b) for a, b in itertools.pairwise(pieces)
                   if b.start_offset < a.end_offset]
    assert overlapping
    for before, after in overlapping:
        assert before.end_offset - after.start_offset <= 90


def test_recursive_prefers_headings_and_paragraphs() -> None:
    config = ChunkingSettings(strategy="recursive", size=300, overlap=0)
    pieces = chunk(LONG_DOC, config)
    assert pieces[0].text.startswith("Chapter One")
    assert any(p.text.startswith("Chapter Two") for p in pieces)
    # A section that fits stays whole: chapter one with its two paragraphs is 280 chars.
    assert pieces[0].text.endswith("Short paragraph.")
    # The over-long "AAAA..." word is hard-split, nothing is lost.
    assert sum(p.text.count("A") for p in pieces) >= 300


def test_paragraph_chunks_start_at_paragraphs() -> None:
    pieces = chunk(LONG_DOC, ChunkingSettings(strategy="paragraph", size=400, overlap=0))
    paragraph_starts = {LONG_TEXT.index(p) for p in LONG_TEXT.split("\n\n")}
    assert pieces[0].text == LONG_TEXT.split("\n\n")[0] + "\n\n" + LONG_TEXT.split("\n\n")[1] \
        or pieces[0].start_offset in paragraph_starts
    whole = [p for p in pieces if p.text in LONG_TEXT.split("\n\n")
             or "\n\n" in p.text]
    assert all(p.start_offset in paragraph_starts for p in whole)


def test_chunk_metadata_merges_document_then_caller() -> None:
    pieces = chunk(LONG_DOC, ChunkingSettings(size=500, overlap=50),
                   metadata={"author": "Caller", "team": "docs", "chunk_index": 99})
    first = pieces[0].metadata
    assert first["title"] == "River" and first["filename"] == "river.txt"
    assert first["author"] == "Caller" and first["team"] == "docs"
    assert first["chunk_index"] == 0  # the chunk's own fields are never overridden


def test_sentence_splitter() -> None:
    text = ("Dr. Smith met J. R. Tolkien at 3 p.m. on Friday! Was it fun? Yes. "
            "The U.S. economy grew 3.5 percent.\n\nNew paragraph without a stop")
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Dr. Smith met J. R. Tolkien at 3 p.m. on Friday!", "Was it fun?", "Yes.",
        "The U.S. economy grew 3.5 percent.", "New paragraph without a stop"]
    cjk = "日本語です。次の文。"
    assert [cjk[s:e] for s, e in split_sentences(cjk)] == [
        "日本語です。", "次の文。"]


async def test_chunk_async_matches_chunk() -> None:
    config = ChunkingSettings(strategy="recursive", size=64, overlap=8, unit="tokens")
    assert await chunk_async(LONG_DOC, config, metadata={"a": 1}) == chunk(
        LONG_DOC, config, metadata={"a": 1})


def test_empty_document_has_no_chunks() -> None:
    for strategy in STRATEGIES:
        assert chunk(ParsedDocument(text="  \n\n "), ChunkingSettings(strategy=strategy)) == []


def test_chunking_settings_validation() -> None:
    with pytest.raises(ValidationError, match="overlap"):
        ChunkingSettings(size=100, overlap=100)
    with pytest.raises(ValidationError):
        ChunkingSettings(size=5)
    with pytest.raises(ValidationError):
        ChunkingSettings(strategy="semantic")
    with pytest.raises(ValidationError):
        ChunkingSettings(unit="words")
    # The service passes a ChunkingSpec dump, which always carries unit="chars".
    assert ChunkingSettings(strategy="token", unit="chars", size=64, overlap=8
                            ).effective_unit == "tokens"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(alphabet=st.sampled_from(list("ab cd.E!?\n\u00e9\u4e2d")), max_size=600),
    strategy=st.sampled_from(STRATEGIES),
    size=st.integers(16, 120),
    overlap_share=st.floats(0, 0.9),
)
def test_chunk_invariants_hold_for_any_text(text: str, strategy: str, size: int,
                                            overlap_share: float) -> None:
    config = ChunkingSettings(strategy=strategy, size=size, overlap=int(size * overlap_share))
    doc = ParsedDocument(text=text)
    pieces = chunk(doc, config)
    if not text.strip():
        assert pieces == []
        return
    check_invariants(doc, pieces, config, slack=1 if strategy == "token" else 0)


# --- embedding ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def minilm() -> LocalMiniLM:
    return LocalMiniLM(batch_size=2)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_local_minilm_vectors(minilm: LocalMiniLM) -> None:
    assert isinstance(minilm, Embedder)
    texts = ["A cat is sleeping on the sofa.",
             "The stock market fell sharply after the bank's report.",
             "A kitten naps on the couch.",
             "Shares dropped steeply when the bank published its results.",
             "How do I bake sourdough bread?"]
    vectors = await minilm.embed(texts)
    assert minilm.dimensions == 384
    assert len(vectors) == len(texts) and all(len(v) == 384 for v in vectors)
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, abs_tol=1e-5)
               for v in vectors)
    cat, market, kitten, shares, bread = vectors
    assert cosine(cat, kitten) > 0.5 > cosine(cat, market)
    assert cosine(market, shares) > cosine(market, kitten) + 0.3
    assert cosine(bread, kitten) < cosine(cat, kitten)
    # Batching (and padding, batch_size=2 of mixed lengths) does not change a vector.
    alone = (await minilm.embed([texts[3]]))[0]
    assert cosine(alone, shares) > 0.9999


async def test_local_minilm_empty_input(minilm: LocalMiniLM) -> None:
    assert await minilm.embed([]) == []


class FakeGateway:
    def __init__(self, dimensions: int = 3, delay: float = 0.01):
        self.dimensions = dimensions
        self.delay = delay
        self.requests: list[EmbeddingRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: EmbeddingRequest) -> dict[str, Any]:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        texts = request.texts or []
        # Later batches answer sooner, and items come back in reverse index order.
        await asyncio.sleep(self.delay * (10 - len(self.requests) % 10))
        self.in_flight -= 1
        data = [{"object": "embedding", "index": i,
                 "embedding": [float(text.split()[-1])] * self.dimensions}
                for i, text in enumerate(texts)]
        return {"object": "list", "model": request.model, "data": data[::-1]}


async def test_gateway_embedder_batches_concurrently_in_order() -> None:
    gateway = FakeGateway()
    embedder = GatewayEmbedder(gateway, "openai/text-embedding-3-small", 3,
                               batch_size=4, concurrency=3)
    texts = [f"text {i}" for i in range(22)]
    vectors = await embedder.embed(texts)
    assert [v[0] for v in vectors] == [float(i) for i in range(22)]
    assert [len(r.texts or []) for r in gateway.requests] == [4, 4, 4, 4, 4, 2]
    assert all(r.model == "openai/text-embedding-3-small" and r.dimensions is None
               for r in gateway.requests)
    assert gateway.max_in_flight == 3
    assert embedder.dimensions == 3 and isinstance(embedder, Embedder)


async def test_gateway_embedder_checks_the_answer() -> None:
    embedder = GatewayEmbedder(FakeGateway(dimensions=5), "m", 3, batch_size=2)
    with pytest.raises(UpstreamError, match="5 dimensions"):
        await embedder.embed(["a 1", "b 2", "c 3"])

    async def short(request: EmbeddingRequest) -> dict[str, Any]:
        return {"data": [{"index": 0, "embedding": [1.0, 0.0, 0.0]}]}

    with pytest.raises(UpstreamError, match="1 vectors for 2 inputs"):
        await GatewayEmbedder(short, "m", 3).embed(["a", "b"])
    assert await GatewayEmbedder(short, "m", 3).embed([]) == []


async def test_gateway_embedder_first_failure_is_raised_and_others_cancelled() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def flaky(request: EmbeddingRequest) -> dict[str, Any]:
        number = len(started)
        started.append(number)
        if number == 0:
            raise UpstreamError("provider down", status=503)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(number)
            raise
        return {"data": []}

    embedder = GatewayEmbedder(flaky, "m", 3, batch_size=1, concurrency=2)
    with pytest.raises(UpstreamError, match="provider down"):
        await asyncio.wait_for(embedder.embed(["a", "b", "c"]), 2)
    assert cancelled
