"""Sentence splitters by name. Each takes ONE paragraph (whitespace already collapsed) and returns its
sentences; `split_sentences` in chunking.py handles paragraphs. Libraries are imported lazily.

The default was chosen on the gold set in tests/text/gold_sentences.txt and on real prose
(bench/splitting.py; numbers in the README).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Callable

from nextvec.errors import NextvecError

DEFAULT_SPLITTER = "blingfire+repair"
REPAIR_VERSION = 2  # bump when the repair rules change: stores record it


@dataclass(frozen=True)
class Splitter:
    name: str
    version: str  # "blingfire 0.1.8 + nextvec repair 2": recorded in a store's manifest
    split: Callable[[str], list[str]]  # one paragraph -> its sentences

    def fingerprint(self) -> dict:
        return {"name": self.name, "version": self.version}


def _package_version(package: str) -> str:
    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return f"{package} (version unknown)"


def _blingfire() -> Callable[[str], list[str]]:
    import blingfire

    return lambda para: blingfire.text_to_sentences(para).split("\n")


def _nupunkt() -> Callable[[str], list[str]]:
    import nupunkt

    nupunkt.sent_tokenize("Warm up. The model loads once.")
    return nupunkt.sent_tokenize


def _pysbd() -> Callable[[str], list[str]]:
    import pysbd

    seg = pysbd.Segmenter(language="en", clean=False)
    return seg.segment


def _syntok() -> Callable[[str], list[str]]:
    from syntok import segmenter

    def split(para: str) -> list[str]:
        return ["".join(t.spacing + t.value for t in sent) for p in segmenter.process(para) for sent in p]

    return split


def _sentencex() -> Callable[[str], list[str]]:
    import sentencex

    return lambda para: list(sentencex.segment("en", para))


# name -> (PyPI package, factory of the paragraph -> sentences function)
SPLITTERS: dict[str, tuple[str, Callable[[], Callable[[str], list[str]]]]] = {
    "blingfire": ("blingfire", _blingfire),
    "nupunkt": ("nupunkt", _nupunkt),
    "pysbd": ("pysbd", _pysbd),
    "syntok": ("syntok", _syntok),
    "sentencex": ("sentencex", _sentencex),
    "nupunkt+repair": ("nupunkt", lambda: _repaired(_nupunkt())),
    "blingfire+repair": ("blingfire", lambda: _repaired(_blingfire())),
}


def _repaired(base: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    return lambda para: repair(base(para))


@lru_cache(maxsize=None)
def get_splitter(name: str = DEFAULT_SPLITTER) -> Splitter:
    """The splitter called `name`; a clear error if it is unknown or its package is not installed."""
    if name not in SPLITTERS:
        raise NextvecError(f"unknown splitter {name!r}; choose one of {', '.join(SPLITTERS)}")
    package, factory = SPLITTERS[name]
    try:
        fn = factory()
    except ImportError as e:
        raise NextvecError(f"the {name} splitter needs its package: pip install {package}") from e
    repaired = f" + nextvec repair {REPAIR_VERSION}" if name.endswith("+repair") else ""
    return Splitter(name, _package_version(package) + repaired, fn)


# --- abbreviation-aware repair pass ----------------------------------------------------------------
# Titles that stand before a name and (almost) never end a sentence: a piece ending in one was cut too early.
HONORIFICS = frozenset(
    "mr mrs ms mme mlle messrs dr prof rev revd fr hon capt lt cmdr col gen brig bvt maj sgt adm gov sen rep pres"
    " supt insp".split()
)
# ... and others that never end a sentence: a piece ending in one is glued to the next.
NEVER_FINAL = HONORIFICS | frozenset("v vs cf viz e.g i.e".split())
# Abbreviations a capitalised word or a number often follows inside a sentence ("Fig. 2", "Jan. 15",
# "Mt. Vernon"): the re-split never cuts after them.
NO_CUT_AFTER = HONORIFICS | frozenset(
    "mt ft fig figs vol vols no nos ch chap eq eqs sec sect dept univ approx cf vs viz ca esp incl al ed eds trans"
    " jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun op art para pt"
    " pp est nr tel ext ref refs st inc co corp ltd jr sr bros ave rd blvd esq".split()  # both readings common: left to the base splitter
)
_MONTHS_DAYS = frozenset(
    "january february march april may june july august september october november december"
    " monday tuesday wednesday thursday friday saturday sunday".split()
)
_OPENERS = "\"'“‘([¿¡"
_CLOSERS = "\"'”’)]"
_DASHES = re.compile(r"--|[—–]")
_LONE_INITIAL = re.compile(r"^(?:[A-Z]\. ?)+$")  # "F.", "H. N."
_ENUMERATOR = re.compile(r"^(\(?\d{1,3}[.)]|\(?[ivxlcIVXLC]{1,5}[.)]|\([a-z]\))$")


def _core(token: str) -> str:
    """A token without surrounding quotes/brackets and without its final . ! or ?"""
    return token.strip(_OPENERS + _CLOSERS).rstrip(".!?…")


def _starts_sentence(token: str) -> bool:
    """Capitalised, a number, or a lowercase-led name with a capital ("iPhone", "eBay", "pH")."""
    t = token.lstrip(_OPENERS)
    return bool(t) and (t[0].isupper() or t[0].isdigit() or (t[0].islower() and t[1:2].isupper()))


def _cut_after(token: str, nxt: str) -> bool:
    """Is `token nxt` a sentence boundary the base splitter may have missed? A plain word (2+ letters, not
    a listed abbreviation) ending in . ! ? or an ellipsis, or "a.m."/"p.m.", before a sentence start."""
    bare = token.rstrip(_CLOSERS)
    if not bare or bare[-1] not in ".!?…" or not _starts_sentence(nxt):
        return False
    if bare.lower() in ("a.m.", "p.m."):
        return _core(nxt).lower() not in _MONTHS_DAYS
    word = _core(token).rstrip("…")
    return len(word) >= 2 and word.isalpha() and word.lower() not in NO_CUT_AFTER


def _resplit(piece: str) -> list[str]:
    tokens = piece.split(" ")
    out, start = [], 0
    for i in range(len(tokens) - 1):
        if _cut_after(tokens[i], tokens[i + 1]):
            out.append(" ".join(tokens[start : i + 1]))
            start = i + 1
    out.append(" ".join(tokens[start:]))
    return out


def _glue_to_next(piece: str, nxt: str) -> bool:
    """Was `piece | nxt` cut too early? After a title ("Mr."), a piece of initials only ("F."), a bare list
    number ("2."), or before a lowercase word when the piece does not end in a plain word and a full stop
    ('"Stop!" | she cried')."""
    last = _DASHES.split(piece.rsplit(" ", 1)[-1])[-1]  # "soon.--Mr." -> "Mr."
    if last.endswith(".") and _core(last).lower() in NEVER_FINAL or piece == "St.":  # a lone "St." is Saint
        return True
    if _LONE_INITIAL.match(piece) or _ENUMERATOR.match(piece):  # "H. N. | Abrams", "2. | Remove the lid."
        return True
    first = nxt.lstrip(_OPENERS)
    if not first or not first[0].islower():
        return False
    bare = last.rstrip(_CLOSERS)
    plain_stop = bare.endswith(".") and not bare.endswith("..") and _core(last).isalpha() and _core(last).islower()
    return not plain_stop


def repair(pieces: list[str]) -> list[str]:
    """Fix the base splitter's two common errors: cuts after a title/list number/quoted exclamation
    (glue), and missed cuts after a plain word and a full stop before a capital (re-split)."""
    out: list[str] = []
    for piece in (s for p in pieces for s in _resplit(p.strip()) if s):
        if out and _glue_to_next(out[-1], piece):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out
