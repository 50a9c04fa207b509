"""The training loop: one readable function, `train(store_path, config, out_dir, resume=False)`.

Run folder:
    RUN/config.json                      the resolved config
    RUN/metrics.jsonl                    one JSON object per step (step, lr, loss, every term, grad_norm)
                                         and one per validation ("val/..." keys)
    RUN/checkpoints/last.safetensors     model + optimizer + loop position (resume from here)
    RUN/checkpoints/best.safetensors     model at the best validation by train.select_metric
    RUN/summary.json                     what `train` returns

Determinism: the randomness of step s (hard negatives, dropout) is drawn from generators seeded with
(seed, rank, s), and the batches of epoch e are a pure function of (seed, e). A checkpoint therefore
only needs weights, optimizer state and the loop position for `resume=True` to continue bit-for-bit.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nextvec.config import LVMConfig, TrainConfig, save_config
from nextvec.data.dataset import WindowDataset
from nextvec.data.sampler import DiverseBatchSampler
from nextvec.data.streaming import InRamWindows, StreamingWindows, use_streaming
from nextvec.data.windows import gather_windows, seeded_subset, window_targets
from nextvec.errors import NextvecError, check_fingerprint
from nextvec.losses import HEAD_TERMS, TERMS, CombinedLoss
from nextvec.models.registry import build_model
from nextvec.store import open_store
from nextvec.train import distributed
from nextvec.train.checkpoint import model_state, optimizer_state, read_checkpoint, save_checkpoint
from nextvec.train.schedule import get_lr

VAL_METRICS = ("val/cosine", "val/std_ratio", "val/loss", "val/energy_score",
               *(f"val/{t}_loss" for t in TERMS + HEAD_TERMS))
VAL_SAMPLE_WINDOWS = 2000  # windows (evenly spaced over val) whose samples score val/energy_score


def step_seed(seed: int, rank: int, step: int) -> int:
    """Seed of all randomness at one step of one rank."""
    return (seed * 1_000_003 + step * 1_009 + rank) % (2**63)


def make_optimizer(model: torch.nn.Module, tc: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only, not on biases, norms or position/prior vectors (nanoGPT)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": tc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=tc.lr, betas=tuple(tc.betas), foreach=False)


@torch.no_grad()
def validate(model: torch.nn.Module, ds: WindowDataset, loss_fn: CombinedLoss, batch_size: int,
             store_std: np.ndarray) -> dict:
    """Mean loss terms (in-batch negatives only), cosine of y_cos, and the median per-dimension std ratio
    of y_dec to the train data (1.0 = same spread; well below 1 = collapse toward the mean)."""
    was_training = model.training
    model.eval()
    sums, n, y_decs = {}, 0, []
    for i in range(0, len(ds), batch_size):
        b = ds.get_batch(torch.arange(i, min(i + batch_size, len(ds))))
        pred = model(b.context, b.mask, b.target)
        _, parts = loss_fn(pred.y_dec, pred.y_cos, b.target, head_losses=pred.head_losses)
        parts["cosine_sim"] = F.cosine_similarity(pred.y_cos, b.target, dim=-1).mean()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(b.target)
        n += len(b.target)
        y_decs.append(pred.y_dec.float().cpu())
    sums["energy_score"] = _val_energy_score(model, ds, batch_size) * n  # a point head: its point, 8 times
    model.train(was_training)
    out = {"val/loss": sums.pop("loss") / n}
    out.update({f"val/{k}_loss": v / n for k, v in sums.items() if k not in ("cosine_sim", "energy_score")})
    if "energy_score" in sums:
        out["val/energy_score"] = sums["energy_score"] / n
    out["val/cosine"] = sums["cosine_sim"] / n
    std = torch.cat(y_decs).std(0, unbiased=False).numpy()
    valid = store_std > 1e-6
    out["val/std_ratio"] = float(np.median(std[valid] / store_std[valid])) if len(y_decs[0]) > 1 else float("nan")
    return out


def _val_energy_score(model, ds: WindowDataset, batch_size: int) -> float:
    """Fair energy score (K = 8, unit vectors) of the model's samples on evenly spaced val windows, with
    the same noise at every validation."""
    from nextvec.models.heads import fair_energy_score

    idx = torch.linspace(0, len(ds) - 1, min(len(ds), VAL_SAMPLE_WINDOWS)).long().unique()
    total, gen = 0.0, None
    for i in range(0, len(idx), batch_size):
        b = ds.get_batch(idx[i:i + batch_size])
        gen = gen or torch.Generator(device=b.context.device).manual_seed(0)
        samples = F.normalize(model.sample(b.context, b.mask, 8, generator=gen), dim=-1)
        total += float(fair_energy_score(samples, F.normalize(b.target, dim=-1)).sum())
    return total / len(idx)


@torch.no_grad()
def predict_windows(model: torch.nn.Module, store, targets: np.ndarray, T: int, batch_size: int = 1024,
                    vectors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Predict the chunk at each of `targets` (store chunk ids) from its T-chunk context.

    Returns (y_dec (M, D), y_cos (M, D)) float32 numpy. `vectors` may be a preloaded float32 copy of
    store.vectors. Runs under no_grad in eval mode on the model's device.
    """
    model.eval()
    device = next(model.parameters()).device
    targets = np.asarray(targets, dtype=np.int64)
    dec, cos = [], []
    for i in range(0, len(targets), batch_size):
        ctx, mask, _ = gather_windows(store, targets[i:i + batch_size], T, vectors)
        pred = model(torch.from_numpy(ctx).to(device), torch.from_numpy(mask).to(device))
        dec.append(pred.y_dec.float().cpu().numpy())
        cos.append(pred.y_cos.float().cpu().numpy())
    D = store.dim
    return (np.concatenate(dec) if dec else np.zeros((0, D), np.float32),
            np.concatenate(cos) if cos else np.zeros((0, D), np.float32))


def _as_config(config) -> LVMConfig:
    if config is None:
        return LVMConfig()
    if isinstance(config, LVMConfig):
        return config
    try:
        return LVMConfig.model_validate(config)
    except Exception as e:
        raise NextvecError(f"invalid config: {e}") from e


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop records written after the checkpoint we continue from."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):  # a line cut short by a kill
            continue
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)


def train(store_path, config: LVMConfig | dict | None, out_dir, resume: bool = False,
          stop_after: int | None = None) -> dict:
    """Train an LVM on a concept store; returns the run summary (also saved as RUN/summary.json).

    Args:
        store_path: a finished concept store.
        config: LVMConfig (or its dict). With resume=True and config=None, RUN/config.json is used.
        out_dir: the run folder.
        resume: continue from RUN/checkpoints/last.safetensors, bit-for-bit.
        stop_after: stop after this global step as if interrupted (for tests of resume); the schedule
            still runs to train.max_steps.
    Under torchrun every process calls this; rank 0 writes the run folder.
    """
    out = Path(out_dir)
    last_path, best_path = out / "checkpoints" / "last.safetensors", out / "checkpoints" / "best.safetensors"
    if resume:
        if not last_path.is_file():
            raise NextvecError(f"{out} has no checkpoints/last.safetensors to resume from")
        if config is None:
            config = json.loads((out / "config.json").read_text())
    elif last_path.is_file():
        raise NextvecError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    cfg = _as_config(config)
    tc, T = cfg.train, cfg.model.context_length
    if tc.select_metric not in VAL_METRICS:
        raise NextvecError(f"train.select_metric {tc.select_metric!r} is not one of {', '.join(VAL_METRICS)}")
    store = open_store(store_path)
    if cfg.model.dim not in (0, store.dim):
        raise NextvecError(f"model.dim {cfg.model.dim} does not match the store's vectors ({store.dim}-d)")
    cfg = cfg.model_copy(update={"model": cfg.model.resolved(store.dim)})
    start_from = last_path if resume else (tc.init_from or None)  # weights to start from, if any
    if start_from is not None:  # refuse before reading any data: another encoder's store, or another model
        tensors, meta = read_checkpoint(start_from)
        what = f"checkpoint {meta['path']}" if resume else f"train.init_from checkpoint {meta['path']}"
        check_fingerprint(store.fingerprint, meta["fingerprint"], what)
        mine = cfg.model.model_dump(mode="json")
        if meta["model_config"] != mine:
            diff = {k: (v, meta["model_config"].get(k)) for k, v in mine.items() if meta["model_config"].get(k) != v}
            raise NextvecError(f"{what} holds another model config (this run / the checkpoint: {diff}); "
                               + ("model.* cannot change on --resume" if resume else "set model.* to match it"))

    if tc.threads:
        torch.set_num_threads(tc.threads)
    env = distributed.setup(tc.device)
    main = env.is_main
    try:
        # ---- data: the split in RAM, or streamed when larger than train.max_ram_gb; windows never cross documents
        streaming = use_streaming(store, tc)
        train_targets = None if streaming else window_targets(store, "train")
        if tc.train_windows:
            train_targets = seeded_subset(train_targets, tc.train_windows, tc.seed)
        if tc.overfit:
            train_targets = seeded_subset(train_targets, tc.overfit, tc.seed)
            val_split, val_targets = "train", train_targets  # the sanity check: fit and measure the same windows
        else:
            val_split, val_targets = "val", seeded_subset(window_targets(store, "val"), tc.val_max_windows, tc.seed)
        if len(val_targets) == 0:
            raise NextvecError(f"the {val_split} split of {store.root} has no windows to validate on; "
                               "ingest with a val fraction > 0")
        if streaming:  # a split larger than train.max_ram_gb: read in shuffled blocks of documents
            train_src = StreamingWindows(store, T, cfg.loss.hard_negatives, tc.batch_size, tc.seed, env.rank,
                                         env.world_size, tc.shuffle_buffer, env.device)
        else:
            train_ds = WindowDataset(store, "train", T, cfg.loss.hard_negatives, train_targets, env.device)
            train_src = InRamWindows(train_ds, DiverseBatchSampler(train_ds.doc, tc.batch_size, tc.max_windows_per_doc,
                                                                   tc.seed, env.rank, env.world_size))
        val_ds = WindowDataset(store, val_split, T, 0, val_targets, env.device)
        if train_src.n_batches(0) == 0:
            raise NextvecError(f"{len(train_src)} training windows make no full batch of {tc.batch_size} per "
                               f"process; lower train.batch_size")

        # ---- model, loss, optimizer
        torch.manual_seed(tc.seed)
        model = build_model(cfg.model).to(env.device)
        loss_fn = CombinedLoss(cfg.loss, store.mean, store.std).to(env.device)
        optimizer = make_optimizer(model, tc)
        last_val = None
        loop = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best": None, "best_step": None, "bad_evals": 0,
                "elapsed_s": 0.0}
        if start_from is not None:
            model.load_state_dict(model_state(tensors))
        if resume:
            optimizer.load_state_dict(optimizer_state(tensors, meta))
            for group, decay in zip(optimizer.param_groups, (tc.weight_decay, 0.0)):  # the config wins
                group.update(weight_decay=decay, betas=tuple(tc.betas))
            loop.update(meta["loop"])
            last_val = meta.get("val")
        if main:
            out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, out / "config.json")
            if resume:
                _truncate_metrics(out / "metrics.jsonl", loop["step"])
            else:
                (out / "metrics.jsonl").write_text("")
        ddp_model = distributed.wrap(model, env)

        def checkpoint(path, with_optimizer, val=None):
            meta = {
                "model_config": cfg.model.model_dump(mode="json"),
                "train_config": tc.model_dump(mode="json"),
                "loss_config": cfg.loss.model_dump(mode="json"),
                "config": cfg.model_dump(mode="json"),
                "step": loop["step"],
                "fingerprint": store.fingerprint,
                "dim": store.dim,
                "context_length": T,
                "store": str(store.root),
                "loop": loop,
                "val": val,
                "params": model.num_params(),
                "torch": torch.__version__,
            }
            save_checkpoint(path, model, meta, optimizer if with_optimizer else None)

        log = open(out / "metrics.jsonl", "a") if main else None
        from tqdm.auto import tqdm

        bar = tqdm(total=tc.max_steps, initial=loop["step"], desc=f"train {cfg.model.name}", dynamic_ncols=True,
                   disable=not (main and tc.progress))
        shown = [t for t in TERMS if getattr(cfg.loss, t) > 0] + [t for t in HEAD_TERMS if t == cfg.model.head]
        gen = torch.Generator()
        on_gpu = env.device.type == "cuda"
        started = time.perf_counter() - loop["elapsed_s"]
        step_seconds, steps_run, stop_reason, last_shown = 0.0, 0, "max_steps", 0.0

        def validate_and_keep(step: int) -> bool:
            """Validate (rank 0), keep the best and last checkpoints; -> whether patience ran out."""
            nonlocal last_val
            last_val = validate(model, val_ds, loss_fn, tc.batch_size, store.std)
            log.write(json.dumps({"step": step, **last_val}) + "\n")
            log.flush()
            value = last_val[tc.select_metric]
            better = loop["best"] is None or (value > loop["best"] if tc.select_mode == "max" else value < loop["best"])
            if better:
                loop.update(best=value, best_step=step, bad_evals=0)
                checkpoint(best_path, with_optimizer=False, val=last_val)
            else:
                loop["bad_evals"] += 1
            checkpoint(last_path, with_optimizer=True, val=last_val)
            return tc.patience > 0 and loop["bad_evals"] >= tc.patience

        train_src.prefetch(loop["epoch"], loop["batch_in_epoch"])  # a streamed first block loads meanwhile
        # The model before any step is a candidate too: with a zero-initialised residual over a prior it IS
        # that prior, so the best checkpoint is never worse on val than where training started.
        if main and loop["step"] == 0:
            validate_and_keep(0)

        # ---- the loop
        while loop["step"] < tc.max_steps:
            if loop["batch_in_epoch"] >= train_src.n_batches(loop["epoch"]):
                loop["epoch"], loop["batch_in_epoch"] = loop["epoch"] + 1, 0
                continue
            t0 = time.perf_counter()
            step = loop["step"]
            gen.manual_seed(step_seed(tc.seed, env.rank, step))  # hard negatives
            dropout_seed = step_seed(tc.seed, env.rank, step) + 1
            torch.cuda.manual_seed(dropout_seed) if on_gpu else torch.default_generator.manual_seed(dropout_seed)
            batch = train_src.batch(loop["epoch"], loop["batch_in_epoch"], gen)
            lr = get_lr(step, tc)
            for group in optimizer.param_groups:
                group["lr"] = lr

            pred = ddp_model(batch.context, batch.mask, batch.target, cfg.loss.energy_samples)
            loss, parts = loss_fn(pred.y_dec, pred.y_cos, batch.target, batch.negatives, batch.negatives_mask,
                                  head_losses=pred.head_losses)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip if tc.grad_clip > 0 else math.inf)
            optimizer.step()

            loop["step"], loop["batch_in_epoch"] = step + 1, loop["batch_in_epoch"] + 1
            record = {"step": step + 1, "epoch": loop["epoch"], "lr": lr, **{k: float(v) for k, v in parts.items()},
                      "grad_norm": float(grad_norm)}
            if not math.isfinite(record["loss"]):
                raise NextvecError(f"loss became {record['loss']} at step {step + 1}: {record}; lower train.lr "
                                   "or check the loss weights")
            if main:
                log.write(json.dumps(record) + "\n")
                bar.update(1)
                if time.perf_counter() - last_shown > 0.5:
                    bar.set_postfix({k: f"{record[k]:.4f}" for k in ["loss", *shown]}, refresh=False)
                    last_shown = time.perf_counter()
            step_seconds += time.perf_counter() - t0
            steps_run += 1
            loop["elapsed_s"] = time.perf_counter() - started

            out_of_time = distributed.any_rank(tc.max_minutes > 0 and loop["elapsed_s"] >= tc.max_minutes * 60, env)
            interrupted = stop_after is not None and loop["step"] >= stop_after
            finishing = loop["step"] >= tc.max_steps or out_of_time or interrupted
            if loop["step"] % tc.val_every == 0 or finishing:
                stop = validate_and_keep(loop["step"]) if main else False
                if distributed.from_main(stop, env):
                    stop_reason = "early_stopping"
                    break
            elif tc.checkpoint_every and loop["step"] % tc.checkpoint_every == 0 and main:
                log.flush()  # every record up to the checkpoint is on disk before it
                checkpoint(last_path, with_optimizer=True, val=last_val)
            if out_of_time:
                stop_reason = "max_minutes"
                break
            if interrupted:
                stop_reason = "stop_after"
                break
        bar.close()
        train_src.close()

        summary = {
            "run_dir": str(out),
            "model": cfg.model.name,
            "params": model.num_params(),
            "steps": loop["step"],
            "epochs": loop["epoch"] + loop["batch_in_epoch"] / max(1, train_src.n_batches(loop["epoch"])),
            "stop_reason": stop_reason,
            "select_metric": tc.select_metric,
            "best": loop["best"],
            "best_step": loop["best_step"],
            "final_val": last_val,
            "train_windows": len(train_src),
            "data_source": "stream" if streaming else "memory",
            "val_windows": len(val_ds),
            "world_size": env.world_size,
            "train_seconds": step_seconds,
            "samples_per_s": steps_run * tc.batch_size * env.world_size / step_seconds if step_seconds else None,
        }
        if tc.overfit and last_val is not None:
            summary["train_cosine"] = last_val["val/cosine"]
        if main:
            log.close()
            (out / "summary.json").write_text(json.dumps(summary, indent=2))
        distributed.barrier(env)
        return summary
    finally:
        distributed.teardown(env)
