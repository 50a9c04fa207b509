"""Hostile input: hypothesis strategies and properties over every reader, the chunker and every HTTP endpoint.

`fuzz(name, n)` runs one property on `n` generated inputs and returns how many it ran; a property failing
raises (hypothesis shrinks it to a minimal example first). tests/reliability/test_hostile.py runs a few
hundred each; bench/reliability.py runs 10,000 each.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nextvec.errors import NextvecError

MAX_CHARS = (8, 40, 400)

# ---- strategies --------------------------------------------------------------------------------------

# text with the characters that break parsers: control chars, surrogates-free unicode, markup, whitespace runs
_alphabet = st.one_of(st.characters(codec="utf-8"), st.sampled_from(list(" \n\n\t\r.!?;:,-–—<>/&#\"'`*[]()#~\x00\x0b\x0c\u2028\u2029\ufeff")))
hostile_text = st.one_of(
    st.text(_alphabet, max_size=600),
    st.lists(st.sampled_from(["<p>", "</p>", "<script>", "</script>", "<!--", "-->", "<![CDATA[", "&amp;", "&#0;",
                              "&#x110000;", "&#99999999999;", "<a href='x'>", "```", "~~~", "# ", "[t](u)", "**", "\n\n",
                              "Dr. Smith", "e.g.", "...", "?!", " ", "x" * 450, "a,b,c;", "\u200b", "\U0001F600", "\x00"]),
             max_size=60).map("".join),
)
hostile_bytes = st.one_of(
    st.binary(max_size=800),
    hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    hostile_text.map(lambda t: t.encode("utf-16")),
    hostile_text.map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "surrogatepass")),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
              hostile_text),
    lambda children: st.one_of(st.lists(children, max_size=6), st.dictionaries(st.text(max_size=10), children, max_size=6)),
    max_leaves=30,
)
record_values = st.one_of(json_values, hostile_text, st.lists(hostile_text, max_size=8),
                          st.lists(st.one_of(hostile_text, st.integers(), st.none()), max_size=5))
jsonl_records = st.one_of(
    st.fixed_dictionaries({}, optional={"id": record_values, "text": record_values, "sentences": record_values,
                                        "other": json_values}),
    json_values,
)


def _jsonl_line(draw_obj) -> bytes:
    return json.dumps(draw_obj, allow_nan=True).encode()


jsonl_files = st.lists(st.one_of(jsonl_records.map(_jsonl_line), st.binary(max_size=80),
                                 hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass"))), max_size=12)


# ---- properties: readers and chunker ----------------------------------------------------------------------

def check_records(records, max_chars: int) -> int:
    """Every record is a Document or a Skipped with a reason; every Document chunks into pieces of at most
    max_chars, each with a letter or digit (chunk hygiene). Returns the number of chunks."""
    from nextvec.text import Document, Skipped, document_chunks

    n = 0
    for rec in records:
        if isinstance(rec, Skipped):
            assert isinstance(rec.reason, str) and rec.reason and rec.where
            continue
        assert isinstance(rec, Document) and isinstance(rec.id, str)
        chunks = document_chunks(rec, max_chars)
        for c in chunks:
            assert isinstance(c, str) and any(ch.isalnum() for ch in c) and len(c) <= max_chars, (c, max_chars)
        n += len(chunks)
    return n


def read_file(data: bytes, name: str, max_chars: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        read_and_check(p, max_chars)


def read_and_check(path: Path, max_chars: int) -> None:
    """Read a hostile file: either a clear NextvecError or records that pass `check_records`."""
    from nextvec.text import read_documents

    try:
        records = list(read_documents(path))
    except NextvecError as e:
        assert str(e)
        return
    check_records(records, max_chars)


def prop_text_file(data: bytes, suffix: str, max_chars: int) -> None:
    read_file(data, "doc" + suffix, max_chars)


def prop_jsonl(lines: list[bytes], max_chars: int) -> None:
    read_file(b"\n".join(lines), "docs.jsonl", max_chars)


def prop_parquet(rows: list[dict], max_chars: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "docs.parquet"
        try:
            table = pa.Table.from_pylist(rows)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):  # not representable as Parquet at all
            p.write_bytes(json.dumps(rows, default=str).encode()[:500])  # a damaged / foreign file instead
        else:
            pq.write_table(table, p)
        read_and_check(p, max_chars)


parquet_cell = st.one_of(st.none(), hostile_text, st.integers(min_value=-2**63, max_value=2**63 - 1),
                         st.floats(allow_nan=True), st.lists(st.one_of(hostile_text, st.none()), max_size=5),
                         st.binary(max_size=20))
# one type per column (Arrow needs it): draw a column kind, then rows
parquet_rows = st.tuples(st.sampled_from(["str", "int", "none"]), st.sampled_from(["str", "list", "int", "bin", "absent"]),
                         st.sampled_from(["list", "str", "absent", "float"]), st.integers(0, 8)).flatmap(
    lambda k: st.lists(st.fixed_dictionaries({
        **({"id": {"str": st.one_of(st.none(), hostile_text), "int": st.one_of(st.none(), st.integers(-5, 10**12)),
                   "none": st.none()}[k[0]]}),
        **({} if k[1] == "absent" else {"text": {"str": st.one_of(st.none(), hostile_text),
                                                 "list": st.lists(hostile_text, max_size=3),
                                                 "int": st.integers(), "bin": st.binary(max_size=30)}[k[1]]}),
        **({} if k[2] == "absent" else {"sentences": {"list": st.one_of(st.none(), st.lists(st.one_of(hostile_text, st.none()), max_size=6)),
                                                      "str": hostile_text,
                                                      "float": st.floats(allow_nan=True)}[k[2]]}),
    }), min_size=k[3], max_size=k[3]))


def prop_chunker(text: str, sentences: list[str], max_chars: int) -> None:
    from nextvec.text import chunk_sentences, split_sentences
    from nextvec.text.readers import html_to_text, markdown_to_text

    for t in (text, html_to_text(text), markdown_to_text(text)):
        sents = split_sentences(t)
        assert all(isinstance(s, str) and s.strip() for s in sents)
        for c in chunk_sentences(sents, max_chars):
            assert c.strip() and len(c) <= max_chars
    chunks = chunk_sentences(sentences, max_chars)
    assert all(c.strip() and len(c) <= max_chars for c in chunks)
    # nothing but whitespace is lost: the chunks hold every non-space character of the sentences, in order
    assert "".join("".join(c.split()) for c in chunks) == "".join("".join(s.split()) for s in sentences)


# ---- properties: HTTP --------------------------------------------------------------------------------------

DIM = 16


def make_app(api_key: str | None = None, root: Path | None = None, limits=None):
    """create_app over a tiny real GRU, the hashing encoder and a 3-document store (no downloads)."""
    import torch

    from nextvec.encode.hashing import HashingEncoder
    from nextvec.models.registry import build_model
    from nextvec.serve.app import create_app
    from nextvec.session import Session
    from nextvec.store import ConceptStore, StoreWriter

    enc = HashingEncoder(DIM)
    docs = [("a", ["the cat sat on the mat.", "it purred all night.", "then the dog barked."]),
            ("b", ["markets fell sharply today.", "investors sold their bonds.", "gold prices rose again."]),
            ("c", ["rain fell on the hills.", "the river rose.", "the bridge held."])]
    root = Path(root or tempfile.mkdtemp(prefix="nextvec-hostile-"))
    w = StoreWriter(root / "store", enc.fingerprint(), {"source": "hostile"})
    w.add_shard(docs, enc.encode([c for _, cs in docs for c in cs]), source_end=3)
    w.finalize((0.34, 0.33, 0.33), 0)
    store = ConceptStore(root / "store")
    torch.manual_seed(0)
    cfg = {"name": "gru", "context_length": 4, "hidden_dim": 8, "num_layers": 1}
    model = build_model(cfg, DIM).eval()
    meta = {"fingerprint": store.fingerprint, "dim": DIM, "context_length": 4, "model_config": cfg, "step": 1}
    return create_app(Session.assemble(model, meta, store, encoder=enc), api_key=api_key, limits=limits)


ENDPOINT_FIELDS = {
    "/encode": ["texts"],
    "/predict": ["context_texts", "context_vectors", "output_type"],
    "/decode": ["vectors", "k"],
    "/generate": ["prompt", "steps", "stop_cos", "k"],
    "/health": [],
}
_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**40, 10**40),
                    st.sampled_from([0.0, 1.0, -1.0, 1e39, -1e39, 3.4e38, 1e-45]))
_vector = st.one_of(st.lists(_floats, min_size=DIM, max_size=DIM), st.lists(_floats, max_size=DIM + 3),
                    st.lists(st.one_of(_floats, st.none(), hostile_text), max_size=DIM + 1))
field_values = st.one_of(
    json_values, hostile_text, st.lists(hostile_text, max_size=5), st.lists(_vector, max_size=5), _vector,
    st.integers(-10**30, 10**30), st.sampled_from(["decoder", "cosine", "", "DECODER"]), _floats,
)


@st.composite
def http_requests(draw):
    path = draw(st.one_of(st.sampled_from(list(ENDPOINT_FIELDS)),
                          st.sampled_from(["/", "/docs", "/openapi.json", "/predict/", "/%00", "/../etc/passwd",
                                           "/encode?x=1", "/decode#frag"])))
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    fields = ENDPOINT_FIELDS.get(path.split("?")[0], [])
    kind = draw(st.sampled_from(["fields", "fields", "fields", "json", "bytes"]))
    if kind == "fields":
        names = draw(st.lists(st.sampled_from(fields + ["extra", "texts", "vectors"]), unique=True, max_size=4))
        body = json.dumps({n: draw(field_values) for n in names}, allow_nan=True).encode()
    elif kind == "json":
        body = json.dumps(draw(json_values), allow_nan=True).encode()
    else:
        body = draw(st.binary(max_size=300))
    ctype = draw(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x", "", "application/json; charset=latin-1"]))
    return method, path, body, ctype


def check_response(r) -> None:
    """No 5xx; every refusal (4xx) says why in a JSON `detail` string."""
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code >= 400 and r.request.method != "HEAD":  # HEAD answers carry no body by definition
        detail = r.json().get("detail")
        assert isinstance(detail, str) and detail.strip(), r.text[:500]
    elif r.request.url.path in ENDPOINT_FIELDS and r.request.method == "POST":
        out = r.json()
        for v in (out.get("vector"), *(out.get("vectors") or [])):
            if v is not None:
                assert len(v) == DIM and all(math.isfinite(x) for x in v)


def prop_http(client, req) -> None:
    method, path, body, ctype = req
    headers = {"content-type": ctype} if ctype else {}
    r = client.request(method, path, content=body, headers=headers)
    check_response(r)


# ---- runner ------------------------------------------------------------------------------------------------

def fuzz(name: str, n: int, client=None) -> int:
    """Run property `name` on n generated inputs; returns the number of inputs tried (raises on a failure)."""
    count = [0]
    cfg = settings(max_examples=n, deadline=None, database=None, derandomize=False,
                   suppress_health_check=list(HealthCheck))

    def run(strategy, f):
        def inner(args):
            count[0] += 1
            f(*args)
        return given(strategy)(inner)

    if name.startswith("reader-"):
        suffix = {"reader-txt": ".txt", "reader-md": ".md", "reader-html": ".html"}[name]
        test = run(st.tuples(hostile_bytes, st.sampled_from(MAX_CHARS)), lambda b, m: prop_text_file(b, suffix, m))
    elif name == "jsonl":
        test = run(st.tuples(jsonl_files, st.sampled_from(MAX_CHARS)), prop_jsonl)
    elif name == "parquet":
        test = run(st.tuples(parquet_rows, st.sampled_from(MAX_CHARS)), prop_parquet)
    elif name == "chunker":
        test = run(st.tuples(hostile_text, st.lists(hostile_text, max_size=8), st.sampled_from(MAX_CHARS)), prop_chunker)
    elif name == "http":
        test = run(st.tuples(http_requests()), lambda req: prop_http(client, req))
    else:
        raise ValueError(name)
    settings(cfg)(test)()
    return count[0]


