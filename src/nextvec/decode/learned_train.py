"""The learned decoder's trainer: (store vector, chunk text) pairs of the train split, validated on val.

It shares nextvec train's machinery: the run folder (nextvec.run.folder: config.json, metrics.jsonl,
checkpoints/{best,last}.safetensors), the one checkpoint format (kind "decoder"), the LR schedule and
early stopping (nextvec.train.schedule), and exact resume. `train_decoder` strings together `_setup`,
`_train_step`, `_validate_and_keep`; training never calls the encoder."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nextvec.decode.learned import (
    TOKENIZER_SOURCE,
    LearnedDecoderConfig,
    LearnedDecoderModelConfig,
    LearnedDecoderNet,
    build_learned_decoder,
    decoder_meta,
    load_tokenizer,
)
from nextvec.decode.metrics import token_f1
from nextvec.errors import NextvecError, check_fingerprint
from nextvec.run.checkpoint import load_optimizer, load_weights, read_checkpoint, save_checkpoint
from nextvec.run.folder import RunFolder
from nextvec.train.schedule import EarlyStopping, get_lr
from nextvec.vecmath import unit_rows

MIN_LR_RATIO = 0.1  # the cosine decays to 10% of train.lr


def tokenize(tokenizer, texts: list[str], max_tokens: int) -> list[list[int]]:
    """[CLS] wordpieces [SEP], truncated to max_tokens (the [SEP] is kept)."""
    enc = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=max_tokens)["input_ids"]
    return [list(map(int, r)) for r in enc]


def pad_batch(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(len(r) for r in rows)
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def noisy(vectors: np.ndarray, sigma: np.ndarray | float, rng: np.random.Generator, normalized: bool) -> np.ndarray:
    """Add per-dimension Gaussian noise N(0, sigma^2); re-normalise when the encoder's vectors are unit-norm."""
    sigma = np.broadcast_to(np.asarray(sigma, np.float32).reshape(-1, 1) if np.ndim(sigma) else np.float32(sigma),
                            (len(vectors), 1))
    out = vectors + sigma * rng.standard_normal(vectors.shape).astype(np.float32)
    if normalized:
        out = unit_rows(out)
    return out.astype(np.float32)


def neighbour_table(vectors: np.ndarray, k: int) -> np.ndarray:
    """(N, D) -> (N, k) indices of each row's k nearest other rows by inner product (FAISS, exact)."""
    from nextvec.index import VectorIndex

    k = min(k, len(vectors) - 1)
    if k < 1:
        return np.zeros((len(vectors), 0), np.int64)
    _, ids = VectorIndex(vectors).search(vectors, k + 1)
    out = np.empty((len(vectors), k), np.int64)
    for i, row in enumerate(ids):
        row = [j for j in row if j != i and j >= 0][:k]
        out[i] = (row + [row[-1]] * k)[:k] if row else i
    return out


def length_buckets(rng: np.random.Generator, lengths: np.ndarray, batch_size: int, pool: int = 16) -> list[np.ndarray]:
    """`pool` batches drawn at random (with replacement), grouped by token length so a batch pads to little
    more than its own rows (~1.5x faster steps than random batches on sentence data); order shuffled."""
    draw = rng.integers(0, len(lengths), batch_size * pool)
    draw = draw[np.argsort(lengths[draw], kind="stable")]
    batches = [draw[i : i + batch_size] for i in range(0, len(draw), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def extra_train_pairs(store, paths: list[str]) -> tuple[np.ndarray, list[str], int]:
    """(vectors, texts, dropped) from the train splits of `paths`, stores made by the same encoder as `store`.
    Chunks whose text is also a val/test text of `store` are dropped (and counted): the decoder must not see a
    held-out sentence, even one another corpus happens to share ("E.g.")."""
    from nextvec.store import open_store

    held_out = set(store.texts(np.concatenate([store.split_chunks("val"), store.split_chunks("test")])))
    vecs, texts, dropped = [], [], 0
    for p in paths:
        other = open_store(p)
        check_fingerprint(store.fingerprint, other.fingerprint, f"the extra store at {other.root}")
        idx = other.split_chunks("train")
        t = other.texts(idx)
        keep = np.array([x not in held_out for x in t], dtype=bool)
        dropped += int((~keep).sum())
        vecs.append(other.get(idx[keep]))
        texts += [x for x, k in zip(t, keep) if k]
    return (np.concatenate(vecs) if vecs else np.zeros((0, store.dim), np.float32)), texts, dropped


class _ValSet:
    def __init__(self, vectors, hyps, rows, texts):
        self.vectors, self.hyps, self.rows, self.texts = vectors, hyps, rows, texts


@torch.no_grad()
def validate(model: LearnedDecoderNet, val: _ValSet, tokenizer, batch_size: int, decode_n: int) -> dict:
    """Teacher-forced loss (first pass and with a neighbour hypothesis) and greedy token F1 on val."""
    model.eval()
    dev = model.out_vocab.device
    losses, losses_h = [], []
    for s in range(0, len(val.rows), batch_size):
        ids, mask = (x.to(dev) for x in pad_batch(val.rows[s : s + batch_size], tokenizer.pad_token_id))
        t = torch.from_numpy(val.vectors[s : s + batch_size]).to(dev)
        n = len(ids)
        losses.append(float(model.loss(t, None, ids, mask)) * n)
        if model.config.correction:
            h = torch.from_numpy(val.hyps[s : s + batch_size]).to(dev)
            losses_h.append(float(model.loss(t, h, ids, mask)) * n)
    out = {"val/loss": sum(losses) / len(val.rows)}
    if losses_h:
        out["val/loss_hyp"] = sum(losses_h) / len(val.rows)
    if decode_n:
        f1s = []
        for s in range(0, min(decode_n, len(val.rows)), batch_size):
            e = min(s + batch_size, decode_n)
            ids, _ = model.generate(torch.from_numpy(val.vectors[s:e]), None, (tokenizer.cls_token_id, tokenizer.sep_token_id))
            hyp = [tokenizer.decode(r, skip_special_tokens=True) for r in ids]
            f1s += [token_f1(h, r) for h, r in zip(hyp, val.texts[s:e])]
        out["val/token_f1"] = float(np.mean(f1s))
    model.train()
    return out


def train_decoder(store, out: str | Path, cfg: LearnedDecoderConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) a learned decoder on `store`'s train split; returns the last metrics record."""
    from nextvec.store import open_store

    if isinstance(store, (str, Path)):
        store = open_store(store)
    run = _setup(store, RunFolder(out), cfg, resume, progress)
    tc = cfg.train
    try:
        record: dict = {}
        while run.minutes() < tc.max_minutes and not (tc.max_steps and run.step >= tc.max_steps):
            loss, lr, gnorm = _train_step(run)
            if run.step % tc.log_every == 0:
                record = {"step": run.step, "loss": loss, "lr": lr, "grad_norm": gnorm, "minutes": round(run.minutes(), 3)}
                run.folder.log(record)
                run.bar.set_postfix(loss=f"{loss:.3f}")
            if run.step % tc.val_every == 0:
                record = _validate_and_keep(run)
                run.bar.set_postfix(loss=f"{loss:.3f}", val=f"{record['val/loss']:.3f}")
                if run.stopping.should_stop:
                    record = dict(record, stopped=f"early stop: no lower val loss in {run.stopping.bad_evals} validations")
                    break
        if run.step % tc.val_every != 0 or run.step == run.resumed_from:
            record = _validate_and_keep(run)
    finally:
        run.bar.close()
        run.folder.close()
    return record


@dataclass
class _Run:
    """What one decoder training run holds between its pieces."""

    cfg: LearnedDecoderConfig
    folder: RunFolder
    device: torch.device
    tokenizer: object
    model: LearnedDecoderNet
    opt: torch.optim.Optimizer
    rng: np.random.Generator  # batches, noise and hypotheses
    pairs: dict  # vectors (N, D), rows (token ids), lengths, neighbours, normalized
    val: _ValSet
    meta: dict  # written into every checkpoint
    stopping: EarlyStopping
    step: int = 0
    resumed_from: int | None = None
    elapsed0: float = 0.0  # minutes trained before this process
    warm_end: float | None = None  # minutes when warmup ended
    t0: float = field(default_factory=time.time)
    queue: list = field(default_factory=list)  # batches of train rows still to run
    bar: object = None

    def minutes(self) -> float:
        return self.elapsed0 + (time.time() - self.t0) / 60

    def time_frac(self) -> float:
        """The share of the time budget left after warmup that has been used: decay runs over what is left
        after warmup, so slow steps (shared CPUs) do not jump the schedule."""
        w = self.warm_end if self.warm_end is not None else self.minutes()
        return (self.minutes() - w) / max(self.cfg.train.max_minutes - w, 1e-9)

    @property
    def amp(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _resume_checkpoint(folder: RunFolder, store, cfg: LearnedDecoderConfig, resume: bool) -> tuple[dict, dict] | None:
    """(tensors, meta) of the last checkpoint to resume from; refuses another encoder's store or model."""
    folder.check_resume(resume)
    if not resume:
        return None
    tensors, meta = read_checkpoint(folder.last, kind="decoder")
    check_fingerprint(meta["fingerprint"], store.fingerprint, f"the store at {store.root}")
    prev_model = LearnedDecoderModelConfig.model_validate({"bow_queries": 0, **meta["model_config"]})
    if prev_model != cfg.model:
        raise NextvecError(f"{folder.root} was trained with model config {prev_model.model_dump()}; resume with the "
                           f"same model settings (train.* may change)")
    return tensors, meta


def _split(store, tc, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train chunk ids, val chunk ids): train capped at max_train_chunks, val a sample of val_size."""
    tr_idx = store.split_chunks("train")
    va_idx = store.split_chunks("val")
    if len(tr_idx) == 0:
        raise NextvecError(f"the store at {store.root} has no train chunks")
    if tc.max_train_chunks and len(tr_idx) > tc.max_train_chunks:
        tr_idx = np.sort(rng.choice(tr_idx, tc.max_train_chunks, replace=False))
    if len(va_idx) == 0:  # tiny stores: validate on (a sample of) train
        va_idx = tr_idx
    va_idx = np.sort(np.random.default_rng(tc.seed + 1).choice(va_idx, min(tc.val_size, len(va_idx)), replace=False))
    return tr_idx, va_idx


def _train_pairs(store, cfg: LearnedDecoderConfig, tr_idx: np.ndarray, tokenizer) -> tuple[dict, dict]:
    """The training pairs (vectors, token rows, their lengths, each row's neighbours) and what extra stores
    added."""
    tc = cfg.train
    tr_vec, tr_texts, extra_info = store.get(tr_idx), store.texts(tr_idx), {}
    if tc.extra_stores:
        ev, et, dropped = extra_train_pairs(store, tc.extra_stores)
        tr_vec, tr_texts = np.concatenate([tr_vec, ev]), tr_texts + et
        extra_info = {"extra_train_pairs": len(et), "extra_dropped_held_out": dropped}
    rows = tokenize(tokenizer, tr_texts, cfg.model.max_tokens)
    nbr = neighbour_table(tr_vec, tc.neighbours) if cfg.model.correction else None
    pairs = {"vectors": tr_vec, "rows": rows, "lengths": np.array([len(r) for r in rows]), "neighbours": nbr,
             "normalized": bool(store.fingerprint.get("normalized", False))}
    return pairs, extra_info


def _val_set(store, cfg: LearnedDecoderConfig, va_idx: np.ndarray, tr_idx: np.ndarray, tr_vec: np.ndarray, tokenizer) -> _ValSet:
    """Val vectors and texts, each with the hypothesis a correction pass would see: its nearest train chunk."""
    va_vec = store.get(va_idx)
    va_texts = store.texts(va_idx)
    if cfg.model.correction:
        from nextvec.index import VectorIndex

        n_main = len(tr_idx)
        _, vn = VectorIndex(tr_vec).search(va_vec, 2)
        # nearest train chunk that is not the same vector (val == train on tiny stores)
        same = (vn[:, 0] < n_main) & np.isin(tr_idx[np.minimum(vn[:, 0], n_main - 1)], va_idx)
        va_hyp = tr_vec[np.where(same, vn[:, 1], vn[:, 0])]
    else:
        va_hyp = np.zeros_like(va_vec)
    return _ValSet(va_vec, va_hyp, tokenize(tokenizer, va_texts, cfg.model.max_tokens), va_texts)


def _setup(store, folder: RunFolder, cfg: LearnedDecoderConfig, resume: bool, progress: bool) -> _Run:
    """Data, model and optimizer; on resume the last checkpoint's weights, optimizer state and position."""
    from tqdm.auto import tqdm

    from nextvec.run.device import resolve_device

    tc = cfg.train
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    device = resolve_device(tc.device)
    prev = _resume_checkpoint(folder, store, cfg, resume)
    rng = np.random.default_rng(tc.seed)
    tr_idx, va_idx = _split(store, tc, rng)
    torch.manual_seed(tc.seed)
    tokenizer = load_tokenizer()
    pairs, extra_info = _train_pairs(store, cfg, tr_idx, tokenizer)
    val = _val_set(store, cfg, va_idx, tr_idx, pairs["vectors"], tokenizer)
    model, bcfg = build_learned_decoder(cfg.model, store.dim, pretrained=prev is None)
    if prev is not None:
        model.set_out_vocab(range(int(prev[1]["out_vocab_size"])))  # sized to load; the buffer holds the ids
    else:
        model.set_out_vocab({t for r in pairs["rows"] for t in r} | {tokenizer.sep_token_id, tokenizer.unk_token_id})
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)  # fused: ~5x faster step on CPU
    meta = {"fingerprint": store.fingerprint, "tokenizer": TOKENIZER_SOURCE, "backbone_config": bcfg,
            "config": cfg.model_dump(mode="json"), "store": str(store.root),
            "n_params": sum(p.numel() for p in model.parameters()), "device": device.type,
            "train_pairs": len(pairs["rows"]), **extra_info}
    run = _Run(cfg, folder, device, tokenizer, model, opt, rng, pairs, val, meta, EarlyStopping("min", tc.patience))
    if prev is not None:
        _restore(run, *prev)
    folder.start(cfg, run.resumed_from)
    run.t0 = time.time()
    model.train()
    run.bar = tqdm(total=tc.max_steps or None, initial=run.step, disable=not progress, desc="train-decoder", unit="step")
    return run


def _restore(run: _Run, tensors: dict, meta: dict) -> None:
    """Weights, optimizer state (when saved), step, clock, early-stopping state and a fresh batch stream."""
    load_weights(run.model, tensors, meta["path"])
    if "optimizer" in meta:
        load_optimizer(run.opt, tensors, meta)
    run.step = run.resumed_from = int(meta["step"])
    run.elapsed0 = float(meta.get("elapsed_minutes", 0.0))
    run.stopping.best = float(meta.get("best_val_loss", float("inf")))
    run.stopping.bad_evals = int(meta.get("stale_validations", 0))
    run.warm_end = meta.get("warmup_end_minutes")
    run.rng = np.random.default_rng([run.cfg.train.seed, run.step])


def _batch(run: _Run, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(target vectors with training noise, neighbour hypotheses or None) of train rows `b`, on the device."""
    tc, rng, p = run.cfg.train, run.rng, run.pairs
    sigma = rng.uniform(0, tc.noise_std, len(b)) if tc.noise_std > 0 else 0.0
    target = noisy(p["vectors"][b], sigma, rng, p["normalized"]) if tc.noise_std > 0 else p["vectors"][b]
    hyp = None
    if run.cfg.model.correction:
        hyp = np.zeros_like(target)
        use = rng.random(len(b)) < tc.correction_prob
        nbr = p["neighbours"]
        if use.any() and nbr.shape[1]:
            pick = nbr[b[use], rng.integers(0, nbr.shape[1], int(use.sum()))]
            hyp[use] = p["vectors"][pick]
        hyp = torch.from_numpy(hyp).to(run.device)
    return torch.from_numpy(target).to(run.device), hyp


def _train_step(run: _Run) -> tuple[float, float, float]:
    """One optimizer step on the next length-bucketed batch -> (loss, lr, grad norm)."""
    tc = run.cfg.train
    if run.warm_end is None and run.step >= tc.warmup_steps:
        run.warm_end = run.minutes()
    lr = get_lr(run.step, tc.lr, tc.warmup_steps, tc.max_steps, MIN_LR_RATIO, run.time_frac())
    for g in run.opt.param_groups:
        g["lr"] = lr
    if not run.queue:
        run.queue = length_buckets(run.rng, run.pairs["lengths"], tc.batch_size)
    b = run.queue.pop()
    target, hyp = _batch(run, b)
    ids, mask = (x.to(run.device) for x in pad_batch([run.pairs["rows"][i] for i in b], run.tokenizer.pad_token_id))
    with run.amp:
        loss = run.model.loss(target, hyp, ids, mask)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = float(torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0))
    run.opt.step()
    run.step += 1
    run.bar.update(1)
    return loss.item(), lr, gnorm


def _validate_and_keep(run: _Run) -> dict:
    """Validate, log, keep the best (lowest val loss) and last checkpoints -> the val record."""
    tc = run.cfg.train
    with run.amp:
        v = validate(run.model, run.val, run.tokenizer, tc.batch_size, tc.decode_val_size)
    rec = {"step": run.step, "minutes": round(run.minutes(), 3), **v}
    run.folder.log(rec)
    improved = run.stopping.update(v["val/loss"])
    meta = dict(run.meta, **decoder_meta(run.model), step=run.step, elapsed_minutes=run.minutes(), val=v,
                warmup_end_minutes=run.warm_end, stale_validations=run.stopping.bad_evals,
                best_val_loss=run.stopping.best)
    if improved:
        save_checkpoint(run.folder.best, run.model, meta, kind="decoder")
    save_checkpoint(run.folder.last, run.model, meta, run.opt, kind="decoder")
    return rec
