"""Demo corpora fetched from package registries (no corpus text is committed to the repo).

    wiki        101 English Wikipedia articles from the dump excerpt in the gensim 4.4.0 wheel's test data
                (text CC BY-SA 3.0, Wikipedia contributors). One document per article section.
    linux-doc   The Linux kernel documentation (HTML) from Debian's linux-doc-6.1 package (GPL-2.0).
                One document per section of each page.
    python-doc  The Python 3.11 documentation (HTML) from Debian's python3.11-doc package (PSF License).
                One document per section of each page.

`get_corpus(name, splitter)` parses once and caches `<cache>/corpora/<name>.<splitter>.jsonl` ({"id",
"sentences"} per line, split by that sentence splitter; the splitter's version is kept beside it in
`<name>.<splitter>.splitter.json` and a different version rebuilds the cache); documents with fewer than
the corpus's `min_sentences` are dropped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

from nextvec.errors import NextvecError
from nextvec.extras import require
from nextvec.store.format import atomic_write_bytes
from nextvec.text.splitters import DEFAULT_SPLITTER

CORPORA = {
    "wiki": {
        "description": "Wikipedia excerpt (101 articles, sections as documents) from the gensim 4.4.0 wheel",
        "license": "CC BY-SA 3.0 (Wikipedia contributors)",
        "source": "PyPI: gensim==4.4.0 (gensim/test/test_data/enwiki-latest-pages-articles1...-shortened.bz2)",
        "min_sentences": 6,
    },
    "linux-doc": {
        "description": "Linux kernel documentation, HTML sections as documents, Debian linux-doc-6.1",
        "license": "GPL-2.0 (the Linux kernel documentation)",
        "source": "Debian: linux-doc-6.1 (usr/share/doc/linux-doc-6.1/html)",
        "min_sentences": 3,  # short reference sections are the norm in kernel docs
    },
    "python-doc": {
        "description": "Python 3.11 documentation, HTML sections as documents, Debian python3.11-doc",
        "license": "PSF License Version 2 (the Python documentation)",
        "source": "Debian: python3.11-doc (usr/share/doc/python3.11/html)",
        "min_sentences": 3,
    },
}


def cache_dir() -> Path:
    root = os.environ.get("NEXTVEC_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "nextvec")
    return Path(root) / "corpora"


def corpus_path(name: str, splitter: str = DEFAULT_SPLITTER) -> Path:
    return cache_dir() / f"{name}.{splitter}.jsonl"


def _cached_splitter(path: Path) -> dict | None:
    try:
        return json.loads(path.with_suffix(".splitter.json").read_text())
    except (OSError, ValueError):
        return None


def get_corpus(name: str, refresh: bool = False, splitter: str = DEFAULT_SPLITTER) -> Path:
    """Return the cached JSONL of a demo corpus split by `splitter`, building it on first use (or when
    the cache was split by another version of that splitter)."""
    if name not in CORPORA:
        raise NextvecError(f"unknown corpus {name!r}; available: {', '.join(CORPORA)}")
    from nextvec.text import get_splitter, split_sentences

    fingerprint = get_splitter(splitter).fingerprint()
    path = corpus_path(name, splitter)
    if path.exists() and not refresh and _cached_splitter(path) == fingerprint:
        return path
    docs = {"wiki": _wiki_documents, "linux-doc": lambda: _debian_sphinx_documents(_LINUX_DOC_PKG, "linux-doc-*/html"),
            "python-doc": lambda: _debian_sphinx_documents("python3.11-doc", "python3.11/html")}[name]()
    lines = []
    for doc_id, text in docs:
        sentences = split_sentences(text, splitter)
        if len(sentences) >= CORPORA[name]["min_sentences"]:
            lines.append(json.dumps({"id": doc_id, "sentences": sentences}, ensure_ascii=False))
    if not lines:
        raise NextvecError(f"corpus {name} produced no documents")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    atomic_write_bytes(path.with_suffix(".splitter.json"), json.dumps(fingerprint).encode())
    return path


# --- wiki -------------------------------------------------------------------------------------------

_WIKI_SUBHEADING = re.compile(r"^\s*=+\s*(.*?)\s*=+\s*$", re.M)
_WIKI_QUOTES = re.compile(r"'{2,}")
_WIKI_LIST = re.compile(r"^[*#:;]+\s*", re.M)
_WIKI_TABLE_ROW = re.compile(r"^\s*[|!{].*$", re.M)
_WIKI_LEFTOVER = re.compile(r"\{\{.*?\}\}|\[\[|\]\]|<[^>]+>")
_SPACES = re.compile(r"[ \t]+")


def clean_wikitext(text: str) -> str:
    """Prose of a gensim-filtered wiki section: sub-headings become paragraph breaks, markup dropped."""
    text = _WIKI_SUBHEADING.sub("\n\n", text)
    text = _WIKI_TABLE_ROW.sub("", text)
    text = _WIKI_LIST.sub("\n\n", text)
    text = _WIKI_QUOTES.sub("", text)
    text = _WIKI_LEFTOVER.sub("", text)
    return prose(re.split(r"\n\s*\n|\n", text))


def prose(paragraphs: list[str], min_chars: int = 30) -> str:
    """Keep paragraphs that read as prose: long enough and ending like a sentence (drops captions, list
    stubs, field names, headings left in the text)."""
    kept = [_SPACES.sub(" ", p.replace("\n", " ")).strip() for p in paragraphs]
    return "\n\n".join(p for p in kept if len(p) >= min_chars and p[-1:] in '.!?"\')')


def _wiki_documents() -> Iterator[tuple[str, str]]:
    gensim = require("gensim", "demo", "the wiki corpus")
    from gensim.scripts.segment_wiki import segment_all_articles
    dump = next((Path(gensim.__file__).parent / "test" / "test_data").glob("enwiki-latest-pages-articles1*"), None)
    if dump is None:
        raise NextvecError("this gensim install does not ship its Wikipedia test dump; pip install gensim==4.4.0")
    for article in segment_all_articles(str(dump), min_article_character=200, workers=1):
        title, sections = article[0], article[1]
        for heading, text in sections:
            if heading.lower() in ("see also", "references", "external links", "further reading", "notes", "bibliography"):
                continue
            yield f"{title}#{heading}", clean_wikitext(text)


# --- linux-doc ----------------------------------------------------------------------------------------

_LINUX_DOC_PKG = "linux-doc-6.1"


def _debian_sphinx_documents(package: str, html_glob: str) -> Iterator[tuple[str, str]]:
    """(page#heading, prose) of every section of the Sphinx HTML a Debian documentation package ships."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise NextvecError(f"the {package} corpus needs apt-get and dpkg-deb (a Debian-based machine)")
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        if r.returncode != 0:
            raise NextvecError(f"apt-get download {package} failed ({r.stderr.strip()[-300:]}); "
                               f"run `apt-get update` first")
        deb = next(Path(tmp).glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        html_root = next((Path(tmp) / "x" / "usr" / "share" / "doc").glob(html_glob))
        for page in sorted(html_root.rglob("*.html")):
            rel = str(page.relative_to(html_root))
            if rel.startswith(("_", "genindex", "search")):
                continue
            for heading, text in sphinx_sections(page.read_text(encoding="utf-8", errors="replace")):
                yield f"{rel}#{heading}", text


class _SphinxSections(HTMLParser):
    """Split a Sphinx page's article body into (heading, prose) at h1-h3; code and tables are skipped."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, list[str]]] = []
        self.in_body = False
        self.heading: list[str] | None = None
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("itemprop") == "articleBody" or a.get("role") == "main":  # RTD theme | classic theme
            self.in_body = True
        if not self.in_body:
            return
        if tag == "footer" or (tag == "div" and {"sphinxsidebar", "footer", "related"} & set((a.get("class") or "").split())):
            self.in_body = False
        elif tag in ("pre", "table", "script", "style"):  # code blocks sit in <pre>
            self.skip += 1
        elif tag in ("h1", "h2", "h3"):
            self.heading = []
        elif tag in ("p", "li", "dd", "dt", "h4", "h5", "div", "br") and self.sections:
            self.sections[-1][1].append("\n\n")

    def handle_endtag(self, tag):
        if not self.in_body:
            return
        if tag in ("pre", "table", "script", "style") and self.skip:
            self.skip -= 1
        elif tag in ("h1", "h2", "h3") and self.heading is not None:
            self.sections.append(("".join(self.heading).strip().rstrip("¶").strip(), []))
            self.heading = None
        elif tag in ("p", "li", "dd", "dt") and self.sections:
            self.sections[-1][1].append("\n\n")

    def handle_data(self, data):
        if not self.in_body or self.skip:
            return
        if self.heading is not None:
            self.heading.append(data)
        elif self.sections:
            self.sections[-1][1].append(data)


def sphinx_sections(html: str) -> list[tuple[str, str]]:
    p = _SphinxSections()
    p.feed(html)
    p.close()
    return [(h, prose(re.split(r"\n\s*\n", "".join(parts)))) for h, parts in p.sections]
