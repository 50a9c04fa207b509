import pytest

from nextvec.text import chunk_sentences, split_sentences
from nextvec.text.chunking import cap_sentence


def test_split_keeps_abbreviations_together():
    text = "Dr. Smith went to Washington. He arrived at 5 p.m. today! Did he?\n\nA new paragraph starts here"
    assert split_sentences(text) == [
        "Dr. Smith went to Washington.", "He arrived at 5 p.m. today!", "Did he?", "A new paragraph starts here",
    ]


def test_split_empty_text():
    assert split_sentences("  \n\n ") == []


def test_short_sentences_untouched():
    assert chunk_sentences(["One.", "Two words."], 400) == ["One.", "Two words."]


def test_cap_prefers_clause_boundary():
    s = "The fox jumps over the lazy dog; then it runs into the forest beyond the hill"
    assert cap_sentence(s, 40) == ["The fox jumps over the lazy dog;", "then it runs into the forest beyond the", "hill"]


@pytest.mark.parametrize("max_chars", [10, 17, 25, 60])
def test_cap_never_cuts_words_and_respects_cap(max_chars):
    s = "alpha beta gamma, delta epsilon; zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma"
    pieces = cap_sentence(s, max_chars)
    assert all(len(p) <= max_chars for p in pieces)
    assert " ".join(pieces).split() == s.split()  # same words, in order, none cut


def test_overlong_token_is_cut_only_when_nothing_else_fits():
    assert cap_sentence("a " + "x" * 25 + " b", 10) == ["a", "x" * 10, "x" * 10, "xxxxx b"]


def test_cap_must_be_sane():
    with pytest.raises(ValueError):
        chunk_sentences(["x"], 3)
