import json

import pytest

from nextvec.corpus import clean_wikitext, prose, sphinx_sections


def test_clean_wikitext_keeps_prose_only():
    raw = "'''Aruba''' is an island.\n===History===\nthumb|A caption\n* a list stub\nIt was settled by the Arawak in 1000 AD.\n{| table\n| cell |}\n"
    out = clean_wikitext(raw)
    # the bold lead is markup-free but under 30 characters, so it goes with the caption, heading and table
    assert out == "It was settled by the Arawak in 1000 AD."


def test_prose_drops_short_and_unterminated_paragraphs():
    assert prose(["Members", "node", "A long enough sentence that ends properly.", "No terminal punctuation here at all"]) == \
        "A long enough sentence that ends properly."


def test_sphinx_sections_split_at_headings_and_skip_code():
    html = """<html><body><nav><p>Navigation text that is long enough to be prose.</p></nav>
    <div itemprop="articleBody">
    <h1>Title<a>¶</a></h1><p>The intro paragraph explains the subsystem in a sentence.</p>
    <pre>int main(void) { return 0; }</pre>
    <h2>Usage</h2><p>Call the function before the device is registered with the core.</p>
    <table><tr><td>A table cell that should not appear in the prose.</td></tr></table>
    </div><footer><p>Footer text that is long enough to look like prose.</p></footer></body></html>"""
    secs = sphinx_sections(html)
    assert [h for h, _ in secs] == ["Title", "Usage"]
    assert secs[0][1] == "The intro paragraph explains the subsystem in a sentence."
    assert secs[1][1] == "Call the function before the device is registered with the core."


@pytest.mark.slow
def test_sphinx_sections_of_the_classic_theme_stop_at_the_sidebar():
    """python-doc pages use Sphinx's classic theme: the body is <div role="main">, a sidebar follows it."""
    html = ('<div class="related"><h3>Navigation</h3><p>Index of modules here.</p></div>'
            '<div class="body" role="main"><h1>json — JSON encoder<a>¶</a></h1><p>JSON is a lightweight data interchange format.</p>'
            '<pre>json.dumps(x)</pre><h2>Basic usage</h2><p>Serialize obj as a JSON formatted stream to fp.</p></div>'
            '<div class="sphinxsidebar"><h3>Table of Contents</h3><p>Previous topic: the email package and its parts.</p></div>')
    secs = sphinx_sections(html)
    assert [h for h, _ in secs] == ["json — JSON encoder", "Basic usage"]
    assert secs[0][1] == "JSON is a lightweight data interchange format."
    assert secs[1][1] == "Serialize obj as a JSON formatted stream to fp."


def test_wiki_corpus_meets_the_demo_size(tmp_path, monkeypatch):
    from nextvec.corpus import get_corpus

    monkeypatch.setenv("NEXTVEC_CACHE", str(tmp_path))
    docs = [json.loads(line) for line in open(get_corpus("wiki"))]
    assert len(docs) >= 300 and all(len(d["sentences"]) >= 6 for d in docs)
    assert sum(len(d["sentences"]) for d in docs) >= 10_000
    assert len({d["id"] for d in docs}) == len(docs)
