"""One decoder spec everywhere: parsing, and the learned decoder end to end through Session, `nextvec
generate`, `nextvec decode` and HTTP /decode and /generate (a tiny decoder and LVM trained here, hash:16
encoder so every command rebuilds the store's encoder from its fingerprint)."""

import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from nextvec.cli import app
from nextvec.config import load_config
from nextvec.decode.learned import LearnedDecoderConfig, LearnedDecoder
from nextvec.decode.spec import attach_decoder, load_decoder, parse_decoder_spec
from nextvec.options import DecoderOptions
from nextvec.encode.hashing import HashingEncoder
from nextvec.errors import FingerprintMismatch, NextvecError
from nextvec.generate import GenerateOptions, encode_prompt, generate, rollouts
from nextvec.serve.app import create_app
from nextvec.session import Session
from tests.conftest import build_store, random_docs

D = 16
DOCS = [[f"Topic {d} sentence {p} about thing{d}x{p}." for p in range(6)] for d in range(8)]
PROMPT = "Topic 1 sentence 0 about thing1x0. Topic 1 sentence 1 about thing1x1."
TINY = dict(backbone="scratch", hidden=32, layers=1, heads=2, prefix_len=2, prefix_hidden=32, dropout=0.0, max_tokens=16)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run, store, decoder folder): a 4-step GRU and a 2-step learned decoder on one hash:16 store."""
    from nextvec.decode.learned_train import train_decoder
    from nextvec.train.loop import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("spec")
    enc = HashingEncoder(D)
    store = build_store(root / "store", [enc.encode(d) for d in DOCS], texts=DOCS, fingerprint=enc.fingerprint())
    train(root / "store", {"model": {"name": "gru", "context_length": 3, "hidden_dim": 16, "num_layers": 1},
                           "train": {"batch_size": 8, "max_steps": 4, "val_every": 4, "warmup_steps": 1,
                                     "progress": False, "device": "cpu", "threads": 1}}, root / "run")
    cfg = load_config(LearnedDecoderConfig, None, [f"model.{k}={v}" for k, v in TINY.items()] + [
        "train.max_steps=2", "train.batch_size=4", "train.val_every=2", "train.val_size=4", "train.decode_val_size=0",
        "train.warmup_steps=1", "train.neighbours=2"])
    train_decoder(store, root / "dec", cfg, progress=False)
    return root / "run", store, root / "dec"


@pytest.mark.parametrize("spec, want", [("retrieval", ("retrieval", None)), ("vec2text", ("vec2text", None)),
                                        ("vec2text:/w/cache", ("vec2text", "/w/cache")),
                                        ("learned:runs/dec", ("learned", "runs/dec")),
                                        (" learned:a:b ", ("learned", "a:b"))])
def test_spec_parses_kind_and_path(spec, want):
    assert parse_decoder_spec(spec) == want


@pytest.mark.parametrize("spec, msg", [("", "empty decoder spec"), ("nearest", "unknown decoder"),
                                       ("learned", "learned:PATH"), ("learned:", "learned:PATH"),
                                       ("retrieval:train", "takes no path"), ("runs/dec", "unknown decoder")])
def test_bad_specs_are_refused_with_the_accepted_forms(spec, msg):
    with pytest.raises(NextvecError, match=msg):
        parse_decoder_spec(spec)


def test_retrieval_spec_decodes_a_store_vector_to_its_own_text(trained):
    _, store, _ = trained
    dec = load_decoder("retrieval", store, options=DecoderOptions(split="train"))
    ids = store.split_chunks("train")[:3]
    got = dec.decode(store.get(ids), k=1)
    assert [c[0][0] for c in got] == store.texts(ids) and dec.spec == "retrieval"
    assert all(c[0][1] == pytest.approx(1.0, abs=1e-5) for c in got)


def test_learned_spec_is_the_trained_decoder_and_refuses_other_encoders(trained, tmp_path):
    _, store, dec_dir = trained
    enc = HashingEncoder(D)
    dec = load_decoder(f"learned:{dec_dir}", store, enc)
    direct = LearnedDecoder.load(dec_dir, encoder=enc)
    v = store.get(np.arange(4))
    assert dec.decode(v, k=2) == direct.decode(v, k=2) and dec.spec == f"learned:{dec_dir}"
    other = build_store(tmp_path / "o", random_docs(n_docs=3, dim=D), fingerprint={"name": "other", "dim": D})
    with pytest.raises(FingerprintMismatch):
        load_decoder(f"learned:{dec_dir}", other)


def test_generate_with_the_learned_decoder_from_python_and_the_cli(trained):
    run, store, dec_dir = trained
    spec = f"learned:{dec_dir}"
    session = Session.open(run, store.root)
    attach_decoder(session, spec)
    out = generate(session, PROMPT, GenerateOptions(steps=3, stop_cos=1.0, samples=0))
    context, _ = encode_prompt(session.store, session.encoder, PROMPT)
    preds, _, _ = rollouts(session.model, context, 3, stop_cos=1.0, context_length=session.context_length)[0]
    want = [c[0][0] for c in LearnedDecoder.load(dec_dir, encoder=HashingEncoder(D)).decode(preds, k=1)]
    assert out["decoder"] == spec and [s["text"] for s in out["steps"]] == want
    r = CliRunner().invoke(app, ["generate", str(run), "--store", str(store.root), "--prompt", PROMPT, "--steps", "3",
                                 "--stop-cos", "1.0", "--samples", "0", "--decoder", spec, "--json"])
    assert r.exit_code == 0, r.output
    cli = json.loads(r.output)
    assert cli["decoder"] == spec and [s["text"] for s in cli["steps"]] == want
    r = CliRunner().invoke(app, ["generate", str(run), "--store", str(store.root), "--prompt", PROMPT,
                                 "--decoder", "learned"])
    assert isinstance(r.exception, NextvecError) and "learned:PATH" in str(r.exception)


def test_http_decode_and_generate_answer_with_the_learned_decoder(trained):
    run, store, dec_dir = trained
    spec = f"learned:{dec_dir}"
    v = store.get(np.arange(5))
    want = [c[:2] for c in LearnedDecoder.load(dec_dir, encoder=HashingEncoder(D)).decode(v, k=2)]
    session = Session.open(run, store.root)
    attach_decoder(session, spec)
    with TestClient(create_app(session)) as c:
        assert c.get("/health").json()["decoder"] == spec
        r = c.post("/decode", json={"vectors": v.tolist(), "k": 2}).json()
        g = c.post("/generate", json={"prompt": PROMPT, "steps": 2}).json()
    assert r["decoder"] == spec and g["decoder"] == spec
    assert [[(x["text"], pytest.approx(x["score"], abs=1e-5)) for x in row] for row in r["results"]] == want
    with TestClient(create_app(Session.open(run, store.root))) as c:  # no decoder asked for: retrieval
        r = c.post("/decode", json={"vectors": v[:1].tolist()}).json()
    assert r["decoder"] == "retrieval" and r["results"][0][0]["text"] == DOCS[0][0]


def test_decode_cli_takes_the_same_spec(trained):
    _, store, dec_dir = trained
    r = CliRunner().invoke(app, ["decode", "--store", str(store.root), "--chunk", "2", "--k", "1", "--json",
                                 "--decoder", f"learned:{dec_dir}"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    want = LearnedDecoder.load(dec_dir, encoder=HashingEncoder(D)).decode(store.get(np.array([2])), k=1)[0][0][0]
    assert out["decoder"] == f"learned:{dec_dir}" and out["results"][0]["candidates"][0]["text"] == want
