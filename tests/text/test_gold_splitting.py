"""The hand-written gold set (gold_sentences.txt) as a test of the default splitter.

Every case is a test. The cases the default splitter is known to get wrong are listed below and marked
xfail(strict): a newly wrong case fails (a regression), and so does a listed case that starts passing
(take it off the list). The overall boundary F1 must stay >= 0.98 (issue 17's target).
"""

from pathlib import Path

import pytest

from nextvec.text import DEFAULT_SPLITTER, split_sentences
from nextvec.text.boundaries import boundaries, load_gold, parse_case, score

GOLD = load_gold(Path(__file__).with_name("gold_sentences.txt"))

# Known misses of blingfire+repair (both readings plausible without world knowledge, or rare forms).
KNOWN_WRONG = {
    "Her middle initial is Q. | Nobody knows what it stands for.",
    "The vitamin is called vitamin C. | Oranges contain a lot of it.",
    'The letter was signed simply "J. H." | Nobody knew who that was.',
    "The empire fell in 476 A.D. | Historians still debate why.",
    "Caesar died in 44 B.C. | Rome changed forever.",
    "The lights went out. | ...and then they came back.",
    "The meeting ended. | van Gogh was the next topic.",
}


def _line(case) -> str:
    return " | ".join(case.sentences) if "\n\n" not in case.text else ""


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason="known miss")) if _line(c) in KNOWN_WRONG else c
    for c in GOLD], ids=[f"{c.category.split()[0]}-{i}" for i, c in enumerate(GOLD)])
def test_default_splitter_on_gold_case(case):
    assert split_sentences(case.text) == list(case.sentences)


def test_default_splitter_boundary_f1_target():
    s = score((split_sentences(c.text), c.sentences) for c in GOLD)
    assert s["f1"] >= 0.98 and s["precision"] >= 0.98, s


def test_gold_set_size_and_known_list_is_current():
    assert len(GOLD) >= 250 and sum(len(c.sentences) - 1 for c in GOLD) >= 200
    assert KNOWN_WRONG <= {_line(c) for c in GOLD}
    assert DEFAULT_SPLITTER == "blingfire+repair"  # the list above is for this splitter


def test_parse_case_and_boundaries_by_hand():
    c = parse_case("Mr. Smith left. | He ran. ¶ Results")
    assert c.text == "Mr. Smith left. He ran.\n\nResults" and c.sentences == ("Mr. Smith left.", "He ran.", "Results")
    assert boundaries(c.sentences) == {13, 19}  # non-space characters before each inner boundary
    s = score([(["Mr.", "Smith left. He ran.", "Results"], c.sentences)])
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1) and s["f1"] == pytest.approx(0.5)
