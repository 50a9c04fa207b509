"""Chunk hygiene: no chunk without a letter or digit survives; it joins a neighbour in its document."""

from nextvec.text import Document, document_chunks, merge_letterless


def test_middle_and_last_letterless_chunks_join_the_previous_one():
    assert merge_letterless(["It ended.", '"', "Then more.", "* * *"], 400) == (['It ended. "', "Then more. * * *"], 2)


def test_first_letterless_chunk_and_opening_brackets_join_the_next_one():
    assert merge_letterless(["...", "Start here.", "(", "An aside.)"], 400) == (["... Start here.", "( An aside.)"], 2)


def test_digits_count_as_content():
    assert merge_letterless(["1.", "2000!", "?"], 400) == (["1.", "2000! ?"], 1)


def test_a_document_of_punctuation_only_has_no_chunks():
    assert merge_letterless([".", "* * *", "--"], 400) == ([], 3)
    assert document_chunks(Document("d", text=". . .\n\n* * *\n\n!!"), 400) == []


def test_cap_is_kept_by_going_to_the_next_chunk_or_dropping():
    full = "x" * 10
    assert merge_letterless([full, ")", "Ok then."], 10) == ([full, ") Ok then."], 1)
    assert merge_letterless([full, "...."], 10) == ([full], 1)  # fits nowhere: only punctuation is lost


def test_document_chunks_apply_hygiene_after_splitting():
    doc = Document("d", text='He left. " And she said nothing.\n\n* * * * *\n\nThe next day came.')
    chunks = document_chunks(doc, 400)
    assert all(any(c.isalnum() for c in ch) for ch in chunks)
    assert " ".join(chunks).split() == doc.text.split()  # nothing lost, order kept
