"""Sentence splitting, the chunk length cap, and chunk hygiene (no chunk without a letter or digit)."""

from __future__ import annotations

import re

from nextvec.text.splitters import DEFAULT_SPLITTER, get_splitter

_PARAGRAPH = re.compile(r"\n\s*\n")
_SPACE = re.compile(r"\s+")
# Clause boundaries, in order of preference: after ; : or a dash, then after a comma.
_CLAUSE_BREAKS = (re.compile(r"[;:]\s|\s[–—-]\s"), re.compile(r",\s"))
_OPENING = set("“‘«([{¿¡")  # straight quotes close more often than they open after a cut


def split_sentences(text: str, splitter: str = DEFAULT_SPLITTER) -> list[str]:
    """Split text into sentences with the named splitter (see splitters.py); blank lines always end a
    sentence, other whitespace runs become one space."""
    split = get_splitter(splitter).split
    out: list[str] = []
    for para in _PARAGRAPH.split(text):
        para = _SPACE.sub(" ", para).strip()
        if para:
            out.extend(s.strip() for s in split(para) if s.strip())
    return out


def cap_sentence(sentence: str, max_chars: int) -> list[str]:
    """Split one sentence into pieces of at most `max_chars`, preferring clause boundaries, then spaces.

    Words are never cut, except a single token longer than `max_chars` (a URL, a hash), which is cut
    into max_chars-sized pieces since nothing else can honour the cap.
    """
    s = sentence.strip()
    if len(s) <= max_chars:
        return [s] if s else []
    head = s[: max_chars + 1]
    cut = -1
    for pattern in _CLAUSE_BREAKS:
        ends = [m.start() + 1 for m in pattern.finditer(head) if max_chars // 3 <= m.start() + 1 <= max_chars]
        if ends:
            cut = ends[-1]
            break
    if cut < 0:
        cut = head.rfind(" ")
    if cut <= 0:  # one token longer than the cap
        cut = max_chars
    return [s[:cut].strip()] + cap_sentence(s[cut:], max_chars)


def chunk_sentences(sentences: list[str], max_chars: int) -> list[str]:
    """Cap every sentence at `max_chars`; short sentences are kept as they are (one chunk each)."""
    if max_chars < 8:
        raise ValueError(f"max_chars must be at least 8, got {max_chars}")
    return [piece for s in sentences for piece in cap_sentence(s, max_chars) if piece]


def has_letter_or_digit(text: str) -> bool:
    return any(c.isalnum() for c in text)


def merge_letterless(chunks: list[str], max_chars: int) -> tuple[list[str], int]:
    """Chunk hygiene: a chunk with no letter or digit (`"`, `.`, `)`, `* * *`) is never a chunk of its own.

    It joins the previous chunk of the document, or the next one when it is first or only opens
    something (`(`, an opening quote), or when the previous chunk has no room under `max_chars`. One that
    fits nowhere is dropped (it held only punctuation). Returns (chunks, how many letterless chunks went);
    a document with no letter or digit at all returns no chunks.
    """
    out: list[str] = []
    carry, gone = "", 0
    for c in chunks:
        if has_letter_or_digit(c):
            if carry and len(carry) + 1 + len(c) <= max_chars:
                c = f"{carry} {c}"
            carry = ""
            out.append(c)
            continue
        gone += 1
        opens = all(ch in _OPENING or ch.isspace() for ch in c)
        if out and not carry and not opens and len(out[-1]) + 1 + len(c) <= max_chars:
            out[-1] = f"{out[-1]} {c}"
        else:
            carry = f"{carry} {c}".strip()
    if carry and out and len(out[-1]) + 1 + len(carry) <= max_chars:
        out[-1] = f"{out[-1]} {carry}"
    return out, gone


def document_pieces(doc, max_chars: int, splitter: str = DEFAULT_SPLITTER) -> list[str]:
    """A document's capped sentences before hygiene: its pre-split sentences used as they are, else its
    text split by `splitter`."""
    sentences = doc.sentences if doc.sentences is not None else split_sentences(doc.text, splitter)
    return chunk_sentences([_SPACE.sub(" ", s).strip() for s in sentences], max_chars)


def document_chunks(doc, max_chars: int, splitter: str = DEFAULT_SPLITTER) -> list[str]:
    """A document's chunks: capped sentences with letterless ones merged into their neighbours."""
    return merge_letterless(document_pieces(doc, max_chars, splitter), max_chars)[0]
