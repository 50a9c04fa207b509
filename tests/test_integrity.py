"""Integrity: every file a store or a run writes carries a hash; a damaged byte, a byte cut or a byte added is
named by `verify`, refused at open (store files, checkpoints, run JSON), and never resumed into."""

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from storekit import build_store, random_docs
from nextvec.cli import app
from nextvec.config import IndexConfig, LVMConfig, load_config
from nextvec.errors import NextvecError
from nextvec.run.folder import save_memory
from nextvec.index import store_unit_index
from nextvec.integrity import IntegrityError, seal_json, sealed_file
from nextvec.store import ConceptStore, StoreWriter
from nextvec.store.card import write_card
from nextvec.run.checkpoint import load_model
from nextvec.train.loop import train
from nextvec.run.folder import read_metrics_lines, read_run_json
from nextvec.verify import damaged, verify

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.toml"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    store = build_store(root / "store", random_docs(n_docs=30))
    write_card(store)
    store_unit_index(ConceptStore(store.root), store.split_chunks("train"), "keys", IndexConfig(kind="hnsw"),
                     log=lambda m: None)
    cfg = load_config(LVMConfig, TINY, ["train.max_steps=6", "train.val_every=3"])
    train(store.root, cfg, root / "run")
    save_memory(root / "run", {"weight": 0.0, "threshold": 0.0})
    return store.root, root / "run"


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "tensorboard" not in p.parts)


def damage(path: Path, how: str, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    if how == "flip":
        i = rng.randrange(len(data))
        data[i] ^= rng.randrange(1, 256)
    elif how == "cut":
        data = data[:-1]
    else:
        data += bytes([rng.randrange(256)])
    path.write_bytes(bytes(data))


def opens(kind: str, folder: Path) -> None:
    """What a command does first with the folder: open the store, or load the run's checkpoints and files."""
    if kind == "store":
        ConceptStore(folder)
        return
    for name in ("best", "last"):
        load_model(folder / "checkpoints" / f"{name}.safetensors")
    for name in ("config.json", "summary.json", "memory.json"):
        read_run_json(folder, name)
    read_metrics_lines(folder)


def test_untouched_folders_verify_clean(made):
    for folder in made:
        report = verify(folder)
        assert report["hashed"] and not damaged(report), report
        assert len(report["files"]) >= 8


@pytest.mark.parametrize("how", ["flip", "cut", "add"])
def test_every_file_damaged_is_named_by_verify_and_refused_at_open(made, tmp_path, how):
    rng = random.Random(how)
    store_root, run_root = made
    for kind, src in (("store", store_root), ("run", run_root)):
        for original in files_of(src):
            rel = original.relative_to(src)
            copy = tmp_path / f"{kind}-{how}-{'_'.join(rel.parts)}"
            shutil.copytree(src, copy)
            damage(copy / rel, how, rng)
            report = verify(copy)
            assert damaged(report) == [str(rel)], (rel, report)
            if "indexes" in rel.parts:  # a cache: rebuilt with a warning, never trusted
                continue
            with pytest.raises(NextvecError):
                opens(kind, copy)
            shutil.rmtree(copy)


def test_verify_cli_names_the_file_and_exits_1(made, tmp_path):
    store_root, _ = made
    copy = tmp_path / "s"
    shutil.copytree(store_root, copy)
    runner = CliRunner()
    assert runner.invoke(app, ["verify", str(copy)]).exit_code == 0
    vectors = copy / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-3] ^= 0x10
    vectors.write_bytes(bytes(data))
    r = runner.invoke(app, ["verify", str(copy)])
    assert r.exit_code == 1 and "vectors.npy: bytes" in r.output
    r = runner.invoke(app, ["info", str(copy), "--verify"])
    assert r.exit_code == 1


def test_a_damaged_index_is_rebuilt_not_used(made, tmp_path, capsys):
    store_root, _ = made
    copy = tmp_path / "s"
    shutil.copytree(store_root, copy)
    faiss_file = copy / "indexes" / "keys.faiss"
    damage(faiss_file, "flip", random.Random(1))
    store = ConceptStore(copy)
    index = store_unit_index(store, store.split_chunks("train"), "keys", IndexConfig(kind="hnsw"), log=lambda m: None)
    assert "rebuilding index keys" in capsys.readouterr().err
    assert index.search(store.get([0]), 1)[1].shape == (1, 1)
    assert not damaged(verify(copy))  # the rebuilt one is saved with its hash


def test_a_resume_refuses_damaged_shards_and_writes_nothing(tmp_path):
    docs = random_docs(n_docs=12)
    w = StoreWriter(tmp_path / "s", {"name": "t", "dim": 8, "pooling": "none", "normalized": True}, {"source": "x"})
    for d in range(0, 8, 4):
        w.add_shard([(f"doc{i}", [f"d{i} s{p}" for p in range(len(docs[i]))]) for i in range(d, d + 4)],
                    np.concatenate(docs[d : d + 4]), source_end=d + 4)
    texts = tmp_path / "s" / "shards" / "texts.bin"
    damage(texts, "flip", random.Random(0))
    before = {p: p.read_bytes() for p in files_of(tmp_path / "s")}
    with pytest.raises(IntegrityError, match="texts.bin is damaged in shard-0000"):
        StoreWriter(tmp_path / "s", {"name": "t", "dim": 8, "pooling": "none", "normalized": True}, {"source": "x"})
    assert {p: p.read_bytes() for p in files_of(tmp_path / "s")} == before


def test_an_import_refuses_an_input_file_that_changed_under_it(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nextvec.vector_import import ImportOptions, import_vectors

    def write(n, seed):
        v = np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)
        pq.write_table(pa.table({"doc_id": [f"d{i // 5}" for i in range(n)], "text": [f"t{i}" for i in range(n)],
                                 "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), 4)}),
                       tmp_path / "in" / "a.parquet")

    (tmp_path / "in").mkdir()
    write(200, 0)
    options = ImportOptions(encoder_name="x", normalized=False, shard_chunks=50, progress=False)
    import_vectors(tmp_path / "in", tmp_path / "s", options)
    write(200, 1)  # same name and size, other content
    with pytest.raises(NextvecError, match="a.parquet"):
        import_vectors(tmp_path / "in", tmp_path / "s", options)


def test_folders_from_before_hashes_still_load_and_say_so(tmp_path):
    store = build_store(tmp_path / "s", random_docs())
    manifest = store.root / "manifest.json"
    import json

    m = json.loads(manifest.read_bytes())
    for s in m["shards"]:
        for key in ("vectors_xxh3", "texts_xxh3", "listing_xxh3"):
            s.pop(key)
    m.pop("files"), m.pop("seal")
    manifest.write_text(json.dumps(m))  # as an older nextvec wrote it: no files, no seal
    old = ConceptStore(store.root)
    assert not old.hashed and len(old) == len(store)
    report = verify(store.root)
    assert not report["hashed"] and not damaged(report)


def test_a_seal_covers_every_byte():
    text = seal_json({"a": 1, "b": [1, 2]}) + b"\n"
    assert sealed_file(text) is True
    for i in range(len(text)):
        for bit in (1, 0x20, 0x80):
            changed = bytearray(text)
            changed[i] ^= bit
            assert sealed_file(bytes(changed)) is not True, (i, bit)


def test_a_blank_line_added_to_the_metrics_and_a_damaged_header_length_are_caught(made, tmp_path):
    """Two damages a random byte can make: a newline appended to metrics.jsonl (a blank last line), and a
    checkpoint whose first 8 bytes claim a header longer than the file (read no more than the file)."""
    _, run_root = made
    copy = tmp_path / "run"
    shutil.copytree(run_root, copy)
    with open(copy / "metrics.jsonl", "ab") as f:
        f.write(b"\n")
    assert damaged(verify(copy)) == ["metrics.jsonl"]
    with pytest.raises(IntegrityError):
        read_metrics_lines(copy)
    shutil.copyfile(run_root / "metrics.jsonl", copy / "metrics.jsonl")
    best = copy / "checkpoints" / "best.safetensors"
    data = bytearray(best.read_bytes())
    data[7] ^= 0x40  # the header length's top byte: 2^62 and more
    best.write_bytes(bytes(data))
    assert damaged(verify(copy)) == ["checkpoints/best.safetensors"]
    with pytest.raises(NextvecError):
        load_model(best)
