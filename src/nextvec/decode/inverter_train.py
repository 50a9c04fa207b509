"""Training loop of the learned decoder: (store vector, chunk text) pairs of the train split, validated
on val; same conventions as `nextvec train` (resolved config.json, JSONL metrics, safetensors
checkpoints with JSON metadata, resume, tqdm progress bar). Training never calls the encoder."""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from nextvec.config import save_config
from nextvec.decode.inverter import (
    TOKENIZER_SOURCE,
    InverterConfig,
    InverterModelConfig,
    VectorInverter,
    build_inverter,
    load_tokenizer,
    save_checkpoint,
)
from nextvec.decode.metrics import token_f1
from nextvec.errors import NextvecError, check_fingerprint


def get_lr(step: int, time_frac: float, cfg) -> float:
    """Linear warmup over warmup_steps, then cosine decay to 10% as `time_frac` (the share of the budget left
    after warmup that has been used, by time or by steps, whichever is further) goes from 0 to 1."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = min(1.0, max(0.0, time_frac))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


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
        n = np.linalg.norm(out, axis=1, keepdims=True)
        out = out / np.where(n > 0, n, 1.0)
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


def _save_optim(opt: torch.optim.Optimizer, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for i, (p, st) in enumerate(((p, opt.state[p]) for g in opt.param_groups for p in g["params"])):
        for key, val in st.items():
            tensors[f"{i}.{key}"] = (val if torch.is_tensor(val) else torch.tensor(val)).detach().cpu().clone().contiguous()
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)


def _load_optim(opt: torch.optim.Optimizer, path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    params = [p for g in opt.param_groups for p in g["params"]]
    for name, val in tensors.items():
        i, key = name.split(".", 1)
        opt.state[params[int(i)]][key] = val.to(params[int(i)].device)


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
def validate(model: VectorInverter, val: _ValSet, tokenizer, batch_size: int, decode_n: int) -> dict:
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
            ids, _ = model.generate(torch.from_numpy(val.vectors[s:e]), None, tokenizer.cls_token_id, tokenizer.sep_token_id)
            hyp = [tokenizer.decode(r, skip_special_tokens=True) for r in ids]
            f1s += [token_f1(h, r) for h, r in zip(hyp, val.texts[s:e])]
        out["val/token_f1"] = float(np.mean(f1s))
    model.train()
    return out


def train_decoder(store, out: str | Path, cfg: InverterConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) a learned decoder on `store`'s train split; returns the last metrics record."""
    from tqdm.auto import tqdm

    from nextvec.store import open_store
    from nextvec.train.distributed import resolve_device

    if isinstance(store, (str, Path)):
        store = open_store(store)
    out = Path(out)
    ck_dir = out / "checkpoints"
    last = ck_dir / "last.safetensors"
    tc = cfg.train
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    device = resolve_device(tc.device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    meta_prev = None
    if last.is_file():
        if not resume:
            raise NextvecError(f"{out} already holds a decoder; pass --resume to continue it or choose a new --out")
        meta_prev = json.loads(last.with_suffix(".json").read_text())
        check_fingerprint(meta_prev["fingerprint"], store.fingerprint, f"the store at {store.root}")
        prev_model = InverterModelConfig.model_validate(meta_prev["model_config"])
        if prev_model != cfg.model:
            raise NextvecError(f"{out} was trained with model config {prev_model.model_dump()}; resume with the same "
                               f"model settings (train.* may change)")
    elif resume and out.exists() and any(out.iterdir()):
        raise NextvecError(f"--resume: {out} has no checkpoints/last.safetensors to resume from")

    tr_idx = store.split_chunks("train")
    va_idx = store.split_chunks("val")
    if len(tr_idx) == 0:
        raise NextvecError(f"the store at {store.root} has no train chunks")
    rng = np.random.default_rng(tc.seed)
    if tc.max_train_chunks and len(tr_idx) > tc.max_train_chunks:
        tr_idx = np.sort(rng.choice(tr_idx, tc.max_train_chunks, replace=False))
    if len(va_idx) == 0:  # tiny stores: validate on (a sample of) train
        va_idx = tr_idx
    va_idx = np.sort(np.random.default_rng(tc.seed + 1).choice(va_idx, min(tc.val_size, len(va_idx)), replace=False))

    torch.manual_seed(tc.seed)
    tokenizer = load_tokenizer()
    normalized = bool(store.fingerprint.get("normalized", False))
    tr_vec = store.get(tr_idx)
    tr_texts = store.texts(tr_idx)
    n_main = len(tr_idx)
    extra_info = {}
    if tc.extra_stores:
        ev, et, dropped = extra_train_pairs(store, tc.extra_stores)
        tr_vec, tr_texts = np.concatenate([tr_vec, ev]), tr_texts + et
        extra_info = {"extra_train_pairs": len(et), "extra_dropped_held_out": dropped}
    tr_rows = tokenize(tokenizer, tr_texts, cfg.model.max_tokens)
    nbr = neighbour_table(tr_vec, tc.neighbours) if cfg.model.correction else None

    va_vec = store.get(va_idx)
    va_texts = store.texts(va_idx)
    if cfg.model.correction:
        from nextvec.index import VectorIndex

        _, vn = VectorIndex(tr_vec).search(va_vec, 2)
        # nearest train chunk that is not the same vector (val == train on tiny stores)
        same = (vn[:, 0] < n_main) & np.isin(tr_idx[np.minimum(vn[:, 0], n_main - 1)], va_idx)
        pick = np.where(same, vn[:, 1], vn[:, 0])
        va_hyp = tr_vec[pick]
    else:
        va_hyp = np.zeros_like(va_vec)
    val = _ValSet(va_vec, va_hyp, tokenize(tokenizer, va_texts, cfg.model.max_tokens), va_texts)

    model, bcfg = build_inverter(cfg.model, store.dim, pretrained=meta_prev is None)
    if meta_prev is not None:
        model.set_out_vocab(range(int(meta_prev["out_vocab_size"])))  # sized to load; the buffer holds the ids
    else:
        model.set_out_vocab({t for r in tr_rows for t in r} | {tokenizer.sep_token_id, tokenizer.unk_token_id})
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)  # fused: ~5x faster step on CPU
    step, elapsed0, best, warm_end, stale = 0, 0.0, float("inf"), None, 0
    if meta_prev is not None:
        from safetensors.torch import load_model

        load_model(model, str(last), device=str(device))
        optim_path = ck_dir / "last.optim.safetensors"
        if optim_path.is_file():
            _load_optim(opt, optim_path)
        step, elapsed0 = int(meta_prev["step"]), float(meta_prev.get("elapsed_minutes", 0.0))
        best = float(meta_prev.get("best_val_loss", float("inf")))
        stale = int(meta_prev.get("stale_validations", 0))
        warm_end = meta_prev.get("warmup_end_minutes")
        rng = np.random.default_rng([tc.seed, step])
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.json")

    base_meta = {"kind": "inverter", "fingerprint": store.fingerprint, "tokenizer": TOKENIZER_SOURCE,
                 "backbone_config": bcfg, "config": cfg.model_dump(mode="json"), "store": str(store.root),
                 "n_params": sum(p.numel() for p in model.parameters()), "device": device.type,
                 "train_pairs": len(tr_rows), **extra_info}

    def checkpoint(name: str, extra: dict) -> None:
        save_checkpoint(ck_dir / f"{name}.safetensors", model, dict(base_meta, **extra))

    metrics_f = open(out / "metrics.jsonl", "a")
    t0 = time.time()
    budget = tc.max_minutes
    model.train()
    bar = tqdm(total=tc.max_steps or None, initial=step, disable=not progress, desc="train-decoder", unit="step")
    record: dict = {}

    def minutes() -> float:
        return elapsed0 + (time.time() - t0) / 60

    def time_frac() -> float:
        # decay runs over what is left after warmup, so slow steps (shared CPUs) do not jump the schedule
        w = warm_end if warm_end is not None else minutes()
        f = (minutes() - w) / max(budget - w, 1e-9)
        if tc.max_steps:
            f = max(f, (step - tc.warmup_steps) / max(tc.max_steps - tc.warmup_steps, 1))
        return f

    def run_val() -> dict:
        nonlocal best, stale
        with amp:
            v = validate(model, val, tokenizer, tc.batch_size, tc.decode_val_size)
        rec = {"step": step, "minutes": round(minutes(), 3), **v}
        metrics_f.write(json.dumps(rec) + "\n")
        metrics_f.flush()
        improved = v["val/loss"] < best
        stale = 0 if improved else stale + 1
        extra = {"step": step, "elapsed_minutes": minutes(), "val": v, "warmup_end_minutes": warm_end,
                 "stale_validations": stale}
        if improved:
            best = v["val/loss"]
            checkpoint("best", dict(extra, best_val_loss=best))
        checkpoint("last", dict(extra, best_val_loss=best))
        _save_optim(opt, ck_dir / "last.optim.safetensors")
        return rec

    tr_len = np.array([len(r) for r in tr_rows])
    queue: list[np.ndarray] = []
    try:
        while minutes() < budget and not (tc.max_steps and step >= tc.max_steps):
            if warm_end is None and step >= tc.warmup_steps:
                warm_end = minutes()
            lr = get_lr(step, time_frac(), tc)
            for g in opt.param_groups:
                g["lr"] = lr
            if not queue:
                queue = length_buckets(rng, tr_len, tc.batch_size)
            b = queue.pop()
            sigma = rng.uniform(0, tc.noise_std, len(b)) if tc.noise_std > 0 else 0.0
            target = noisy(tr_vec[b], sigma, rng, normalized) if tc.noise_std > 0 else tr_vec[b]
            hyp = None
            if cfg.model.correction:
                hyp = np.zeros_like(target)
                use = rng.random(len(b)) < tc.correction_prob
                if use.any() and nbr.shape[1]:
                    pick = nbr[b[use], rng.integers(0, nbr.shape[1], int(use.sum()))]
                    hyp[use] = tr_vec[pick]
                hyp = torch.from_numpy(hyp).to(device)
            ids, mask = (x.to(device) for x in pad_batch([tr_rows[i] for i in b], tokenizer.pad_token_id))
            with amp:
                loss = model.loss(torch.from_numpy(target).to(device), hyp, ids, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
            opt.step()
            step += 1
            bar.update(1)
            if step % tc.log_every == 0:
                record = {"step": step, "loss": loss.item(), "lr": lr, "grad_norm": gnorm, "minutes": round(minutes(), 3)}
                metrics_f.write(json.dumps(record) + "\n")
                metrics_f.flush()
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if step % tc.val_every == 0:
                record = run_val()
                bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{record['val/loss']:.3f}")
                if tc.patience and stale >= tc.patience:
                    record = dict(record, stopped=f"early stop: no lower val loss in {stale} validations")
                    break
        if step % tc.val_every != 0 or meta_prev is not None and step == int(meta_prev["step"]):
            record = run_val()
    finally:
        bar.close()
        metrics_f.close()
    return record
