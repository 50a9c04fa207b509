"""Sentence-boundary scoring: a gold file of hand-split cases, and boundary precision / recall / F1.

A boundary is placed by the number of non-space characters before it, so splitters that drop or
normalise whitespace are scored on the same footing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SENTENCE_SEP = " | "
PARAGRAPH_SEP = " ¶ "


@dataclass(frozen=True)
class GoldCase:
    category: str
    text: str  # what a splitter sees
    sentences: tuple[str, ...]  # the right answer


def parse_case(line: str, category: str = "") -> GoldCase:
    """`A. | B. ¶ C.` -> text "A. B.\\n\\nC." and sentences (A., B., C.)."""
    paragraphs = line.split(PARAGRAPH_SEP)
    text = "\n\n".join(p.replace(SENTENCE_SEP, " ") for p in paragraphs)
    sentences = tuple(s.strip() for p in paragraphs for s in p.split(SENTENCE_SEP))
    return GoldCase(category, text, sentences)


def load_gold(path: str | Path) -> list[GoldCase]:
    """Read a gold file: one case per line, `## name` starts a category, `#` lines are comments."""
    cases, category = [], ""
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("## "):
            category = line[3:].strip()
        elif line and not line.startswith("#"):
            cases.append(parse_case(line, category))
    return cases


def boundaries(sentences) -> set[int]:
    """Inner boundaries of a split, as counts of non-space characters before each one."""
    out, n = set(), 0
    for s in list(sentences)[:-1]:
        n += sum(not c.isspace() for c in s)
        out.add(n)
    return out


def score(pairs) -> dict:
    """Boundary precision, recall and F1 over (predicted sentences, gold sentences) pairs."""
    tp = fp = fn = 0
    for pred, gold in pairs:
        p, g = boundaries(pred), boundaries(gold)
        tp, fp, fn = tp + len(p & g), fp + len(p - g), fn + len(g - p)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
