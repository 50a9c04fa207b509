"""Sentence splitters side by side: boundary precision / recall / F1 on the hand-written gold set, and
what they do to real prose joined into paragraphs, with throughput. One run, one table per text.

    python bench/splitting.py [--splitters blingfire,nupunkt,...] [--max-mb 2.0]

Texts:
  gold     tests/text/gold_sentences.txt (hand-split cases; F1 over inner sentence boundaries)
  wiki     the wiki demo corpus's article sections as paragraphs (gensim 4.4.0 test dump, before splitting)
  austen   Jane Austen's six novels, hard-wrapped lines joined back into paragraphs (Debian
           r-cran-janeaustenr, public-domain text; fetched with apt-get download, cached once)
On real prose there is no gold; the table counts pieces that cannot be sentences: a lone title
("Mr.", "Dr.", "St."), or a piece with no letter or digit. MB/s is UTF-8 bytes of paragraph text per
second of splitting (the first call, which loads a model, is outside the timing).
"""

from __future__ import annotations

import argparse
import re
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from nextvec.corpus import cache_dir
from nextvec.text.boundaries import load_gold, score
from nextvec.text.chunking import has_letter_or_digit, split_sentences
from nextvec.text.splitters import DEFAULT_SPLITTER, HONORIFICS, SPLITTERS, get_splitter

GOLD = Path(__file__).resolve().parents[1] / "tests" / "text" / "gold_sentences.txt"
LONE_TITLE = re.compile(r"^(%s|st)\.$" % "|".join(HONORIFICS), re.I)


def wiki_paragraphs() -> list[str]:
    from nextvec.corpus import _wiki_documents

    return [p for _, text in _wiki_documents() for p in text.split("\n\n") if p.strip()]


def _r_strings(blob: bytes) -> list[str]:
    """The strings of an R XDR-serialised character vector (the only object type the package holds)."""
    assert blob[:2] == b"X\n", "not an R XDR serialisation"
    pos = 14  # 'X\n', format version, R version, minimal R version
    if struct.unpack(">i", blob[6:10])[0] >= 0x30000:  # format 3 adds the native encoding name
        n = struct.unpack(">i", blob[pos : pos + 4])[0]
        pos += 4 + n
    sexptype = struct.unpack(">i", blob[pos : pos + 4])[0] & 0xFF
    assert sexptype == 16, f"expected a character vector (STRSXP), got type {sexptype}"
    count = struct.unpack(">i", blob[pos + 4 : pos + 8])[0]
    pos += 8
    out = []
    for _ in range(count):
        length = struct.unpack(">i", blob[pos + 4 : pos + 8])[0]
        pos += 8
        out.append("" if length < 0 else blob[pos : pos + length].decode("utf-8", "replace"))
        pos += max(length, 0)
    return out


def austen_paragraphs() -> list[str]:
    """Austen's novels from Debian's r-cran-janeaustenr, as paragraphs (cached under the corpus cache)."""
    cached = cache_dir().parent / "bench" / "austen.txt"
    if not cached.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "r-cran-janeaustenr"], cwd=tmp, check=True, capture_output=True)
            deb = next(Path(tmp).glob("*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), f"{tmp}/x"], check=True)
            rdb = next(Path(tmp, "x").rglob("Rdata.rdb")).read_bytes()
        lines, pos = [], 0
        while pos < len(rdb):  # lazy-load DB: [4-byte length][zlib stream] per object
            d = zlib.decompressobj()
            lines += _r_strings(d.decompress(rdb[pos + 4 :])) + [""]
            pos = len(rdb) - len(d.unused_data)
        paras = re.split(r"\n\s*\n", "\n".join(lines))
        text = "\n".join(" ".join(p.split()) for p in paras if p.strip())
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(text, encoding="utf-8")
    return cached.read_text(encoding="utf-8").split("\n")


def gold_row(name: str, cases) -> str:
    pairs = [(split_sentences(c.text, name), c.sentences) for c in cases]
    s = score(pairs)
    wrong = sum(list(p) != list(g) for p, g in pairs)
    nbytes = sum(len(c.text.encode()) for c in cases)
    t = time.perf_counter()
    for _ in range(20):
        for c in cases:
            split_sentences(c.text, name)
    mbs = 20 * nbytes / (time.perf_counter() - t) / 1e6
    return (f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | **{s['f1']:.3f}** | {wrong}/{len(cases)} "
            f"| {s['fp']} | {s['fn']} | {mbs:.2f} |")


def prose_row(name: str, paragraphs: list[str]) -> str:
    text = "\n\n".join(paragraphs)
    t = time.perf_counter()
    sentences = split_sentences(text, name)
    seconds = time.perf_counter() - t
    titles = sum(bool(LONE_TITLE.match(s)) for s in sentences)
    letterless = sum(not has_letter_or_digit(s) for s in sentences)
    n = len(sentences)
    return (f"| {name} | {n} | {titles} ({100 * titles / n:.3f}%) | {letterless} ({100 * letterless / n:.3f}%) "
            f"| {len(text.encode()) / seconds / 1e6:.2f} |")


def take_mb(paragraphs: list[str], mb: float) -> list[str]:
    out, n = [], 0
    for p in paragraphs:
        if n >= mb * 1e6:
            break
        out.append(p)
        n += len(p.encode()) + 2
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splitters", default=",".join(SPLITTERS))
    ap.add_argument("--max-mb", type=float, default=2.0, help="Cap on each real text (pysbd is slow).")
    args = ap.parse_args()
    names = args.splitters.split(",")
    for name in names:
        get_splitter(name).split("Load the model. Then time it.")
    cases = load_gold(GOLD)
    n_bound = sum(len(c.sentences) - 1 for c in cases)
    print(f"## gold set: {len(cases)} cases, {n_bound} inner boundaries (default splitter: {DEFAULT_SPLITTER})\n")
    print("| splitter | precision | recall | F1 | cases wrong | false cuts | missed cuts | MB/s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        print(gold_row(name, cases), flush=True)
    for label, load in (("wiki", wiki_paragraphs), ("austen", austen_paragraphs)):
        paragraphs = take_mb(load(), args.max_mb)
        mb = sum(len(p.encode()) for p in paragraphs) / 1e6
        print(f"\n## {label}: {len(paragraphs)} paragraphs, {mb:.2f} MB\n")
        print("| splitter | sentences | lone titles (Mr./Dr./St.) | no letter or digit | MB/s |")
        print("|---|---|---|---|---|")
        for name in names:
            print(prose_row(name, paragraphs), flush=True)
    print("\nversions: " + ", ".join(f"{n}: {get_splitter(n).version}" for n in names), file=sys.stderr)


if __name__ == "__main__":
    main()
