"""Jane Austen's six novels as one JSONL document per chapter: a corpus of fiction with dialogue that no
recipe choice was made on (issue 14's out-of-sample check).

    python bench/austen_chapters.py austen-chapters.jsonl
    nextvec ingest austen-chapters.jsonl --out stores/austen
    python bench/generative.py --store austen=stores/austen --runs runs/generative

The text is Debian's r-cran-janeaustenr (public domain), fetched and cached by bench/splitting.py. A
"CHAPTER I" / "Chapter 1" line starts a document; title, "By Jane Austen" and VOLUME lines are dropped.
Emma numbers its chapters per volume, so a repeated id gets " (2)", " (3)".
"""

from __future__ import annotations

import json
import re
import sys

from splitting import austen_paragraphs

CHAPTER = re.compile(r"^(CHAPTER|Chapter)\s+\w+")


def chapters(lines: list[str]) -> list[dict]:
    docs, novel, chapter, body = [], None, None, []

    def flush():
        if chapter and body:
            docs.append({"id": f"{novel}/{chapter}", "text": "\n\n".join(body)})

    for i, line in enumerate(lines):
        if i + 1 < len(lines) and lines[i + 1].startswith("By Jane Austen"):  # a novel's title line
            flush()
            novel = line.strip() if not line.startswith("(") else f"{lines[i - 1].strip()} {line.strip()}"
            chapter, body = None, []
        elif CHAPTER.match(line):
            flush()
            chapter, body = line.strip(), []
        elif chapter and line.strip() and not line.startswith("By Jane Austen") and not line.startswith("VOLUME"):
            body.append(line.strip())
    flush()
    seen: dict[str, int] = {}
    for d in docs:
        seen[d["id"]] = seen.get(d["id"], 0) + 1
        if seen[d["id"]] > 1:
            d["id"] = f"{d['id']} ({seen[d['id']]})"
    return docs


def main() -> None:
    docs = chapters(austen_paragraphs())
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    print(f"{len(docs)} chapters, {sum(len(d['text']) for d in docs):,} characters -> {sys.argv[1]}")


if __name__ == "__main__":
    main()
