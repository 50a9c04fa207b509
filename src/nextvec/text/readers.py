"""Readers: a folder of .txt/.md/.html files, JSONL, Parquet. Each yields records in a stable order,
so an interrupted ingest can skip exactly the records it already stored.

A record is a `Document` or a `Skipped` (non-UTF-8, binary, empty, malformed): ingest counts skips and
prints one warning line each, and never stops halfway because of one bad record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

from nextvec.errors import NextvecError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")


@dataclass
class Document:
    id: str
    text: str | None = None
    sentences: list[str] | None = None  # pre-split: used as is (only capped)


@dataclass
class Skipped:
    where: str
    reason: str


Record = Document | Skipped


def read_documents(source: str | Path) -> Iterator[Record]:
    """Records from a folder, a .jsonl file or a .parquet file."""
    path = Path(source)
    if path.is_dir():
        return read_folder(path)
    if path.is_file() and path.suffix in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(path)
    if path.is_file() and path.suffix == ".parquet":
        return read_parquet(path)
    if path.is_file() and path.suffix in TEXT_SUFFIXES:
        return iter([_file_record(path, path.name)])
    if not path.exists():
        raise NextvecError(f"source {source} does not exist (expected a folder, .jsonl, .parquet or a demo corpus name; "
                           f"see `nextvec corpus list`)")
    raise NextvecError(f"cannot read {source}: expected a folder of .txt/.md/.html files, a .jsonl or a .parquet file")


def count_records(source: str | Path) -> int | None:
    """How many records `read_documents` will yield (blank JSONL lines aside), read cheaply before any
    encoding: files of a folder, non-blank lines of a JSONL file, rows in a Parquet file's metadata; None
    when the source cannot be counted."""
    path = Path(source)
    try:
        if path.is_dir():
            return sum(1 for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if path.suffix in (".jsonl", ".json", ".ndjson"):
            with open(path, "rb") as f:
                return sum(1 for line in f if line.strip())
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # the reader itself reports an unreadable source; a bar without a total is no error
        return None
    return 1 if path.is_file() else None


def read_folder(root: Path) -> Iterator[Record]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    if not files:
        raise NextvecError(f"{root} holds no .txt, .md or .html files")
    for p in files:
        yield _file_record(p, str(p.relative_to(root)))


def _file_record(path: Path, doc_id: str) -> Record:
    try:
        raw = path.read_bytes()
    except OSError as e:
        return Skipped(doc_id, f"unreadable ({e.strerror})")
    if b"\x00" in raw[:8192]:
        return Skipped(doc_id, "binary file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return Skipped(doc_id, f"not UTF-8 (byte {e.start})")
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        text = html_to_text(text)
    elif suffix in (".md", ".markdown"):
        text = markdown_to_text(text)
    if not text.strip():
        return Skipped(doc_id, "empty document")
    return Document(doc_id, text=text)


def parse_record(obj, where: str) -> Record:
    """A JSONL/Parquet row -> Document: {"id", "text"} or {"id", "sentences": [...]}."""
    if not isinstance(obj, dict):
        return Skipped(where, "not a JSON object")
    doc_id = obj.get("id", where)
    if not isinstance(doc_id, (str, int)):
        return Skipped(where, "id must be a string or an integer")
    text, sentences = obj.get("text"), obj.get("sentences")
    if sentences is not None:
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            return Skipped(where, "'sentences' must be a list of strings")
        if not any(s.strip() for s in sentences):
            return Skipped(where, "empty document")
        return Document(str(doc_id), sentences=[s for s in sentences if s.strip()])
    if text is None:
        return Skipped(where, "neither 'text' nor 'sentences'")
    if not isinstance(text, str):
        return Skipped(where, "'text' must be a string")
    if not text.strip():
        return Skipped(where, "empty document")
    return Document(str(doc_id), text=text)


def read_jsonl(path: Path) -> Iterator[Record]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            where = f"{path.name}:{n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield Skipped(where, "not UTF-8")
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield Skipped(where, f"malformed JSON ({e.msg})")
                continue
            yield parse_record(obj, where)


def read_parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for damaged files
        raise NextvecError(f"cannot read Parquet file {path}: {e}") from e
    cols = [c for c in ("id", "text", "sentences") if c in pf.schema_arrow.names]
    if "text" not in cols and "sentences" not in cols:
        raise NextvecError(f"{path} needs a 'text' or 'sentences' column; it has {pf.schema_arrow.names}")
    n = 0
    for batch in pf.iter_batches(columns=cols, batch_size=1024):
        for row in batch.to_pylist():
            n += 1
            row = {k: v for k, v in row.items() if v is not None}
            yield parse_record(row, f"{path.name}:row {n}")


# --- cleaning -------------------------------------------------------------------------------------

_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
               "article", "blockquote", "dd", "dt", "pre", "header", "footer", "title"}
_SKIP_TAGS = {"script", "style", "noscript", "template", "head"}


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS and self.skip:
            self.skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page; block elements become paragraph breaks."""
    p = _TextExtractor()
    p.feed(html)
    p.close()
    return "".join(p.parts)


_MD_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*(.*?)\s*#*\s*$", re.M)
_MD_EMPH = re.compile(r"(\*\*|__|\*|`)")


def markdown_to_text(md: str) -> str:
    """Prose of a Markdown file: code blocks dropped, links reduced to their text, headings as paragraphs."""
    md = _MD_FENCE.sub("\n\n", md)
    md = _MD_LINK.sub(r"\1", md)
    md = _MD_HEADING.sub(lambda m: f"\n\n{m.group(1)}\n\n", md)
    return _MD_EMPH.sub("", md)
