"""Sentence splitting and the chunk length cap."""

from __future__ import annotations

import re

_PARAGRAPH = re.compile(r"\n\s*\n")
_SPACE = re.compile(r"\s+")
# Clause boundaries, in order of preference: after ; : or a dash, then after a comma.
_CLAUSE_BREAKS = (re.compile(r"[;:]\s|\s[–—-]\s"), re.compile(r",\s"))


def split_sentences(text: str) -> list[str]:
    """Split text into sentences with blingfire; blank lines always end a sentence."""
    import blingfire

    out: list[str] = []
    for para in _PARAGRAPH.split(text):
        para = _SPACE.sub(" ", para).strip()
        if para:
            out.extend(s.strip() for s in blingfire.text_to_sentences(para).split("\n") if s.strip())
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


def document_chunks(doc, max_chars: int) -> list[str]:
    """A document's chunks: its pre-split sentences used as they are (capped), else its text split."""
    sentences = doc.sentences if doc.sentences is not None else split_sentences(doc.text)
    return chunk_sentences([_SPACE.sub(" ", s).strip() for s in sentences], max_chars)
