import pytest

from nextvec.errors import NextvecError
from nextvec.text import SPLITTERS, get_splitter, split_sentences
from nextvec.text.splitters import repair

EMMA = "He was so happy. Mr. Knightley had come to call. Dr. Perry said so. Mrs. Weston agreed. St. Paul's was near."
EMMA_SPLIT = ["He was so happy.", "Mr. Knightley had come to call.", "Dr. Perry said so.", "Mrs. Weston agreed.",
              "St. Paul's was near."]


def test_issue_example_is_split_right_by_the_default():
    assert split_sentences(EMMA) == EMMA_SPLIT


def test_bare_blingfire_still_shows_the_issue():  # the reason for the repair pass
    assert "Mr." in split_sentences(EMMA, "blingfire")


def test_repair_glues_early_cuts_and_resplits_missed_ones():
    assert repair(["He was so happy.", "Mr.", "Knightley came.", "Dr.", "Perry said so. Mrs. Weston agreed."]) == [
        "He was so happy.", "Mr. Knightley came.", "Dr. Perry said so.", "Mrs. Weston agreed."]
    assert repair(['"Stop!"', "she cried.", "2.", "Remove the lid."]) == ['"Stop!" she cried.', "2. Remove the lid."]
    # lone initials and military titles, as in the wiki corpus
    assert repair(["In 2008.", "H.", "N.", "Abrams published it.", "Then Brig.", "Gen. Lee came."]) == [
        "In 2008.", "H. N. Abrams published it.", "Then Brig. Gen. Lee came."]
    # never cuts after listed abbreviations, initials or a lowercase word start
    assert repair(["See Fig. 2 and Mt. Vernon on Jan. 15 with J. Smith. the end."]) == [
        "See Fig. 2 and Mt. Vernon on Jan. 15 with J. Smith. the end."]


def test_unknown_splitter_is_a_clear_error():
    with pytest.raises(NextvecError, match="unknown splitter 'nltk'.*blingfire"):
        get_splitter("nltk")


@pytest.mark.parametrize("name", list(SPLITTERS))
def test_every_splitter_splits_and_records_its_version(name):
    pytest.importorskip(SPLITTERS[name][0])
    sp = get_splitter(name)
    assert split_sentences("It rained. We stayed in.\n\nThe end", name) == ["It rained.", "We stayed in.", "The end"]
    assert sp.fingerprint()["name"] == name and SPLITTERS[name][0] in sp.fingerprint()["version"]
