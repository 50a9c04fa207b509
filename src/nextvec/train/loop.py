"""The LVM trainer: `train(store_path, config, out_dir, resume=False)`, in pieces that each fit on a screen:
`_setup` (data, model, optimizer, start checkpoint), `_train_step`, `_validate_and_keep`, `_finish`;
`_run_steps` is the loop that strings them together.

Run folder (nextvec.run.folder, shared with the decoder trainer):
    RUN/config.json                      the resolved config
    RUN/metrics.jsonl                    one JSON object per step (step, lr, loss, every term, grad_norm)
                                         and one per validation ("val/..." keys)
    RUN/checkpoints/last.safetensors     model + optimizer + loop position (resume from here)
    RUN/checkpoints/best.safetensors     model at the best validation by train.select_metric
    RUN/summary.json                     what `train` returns
    RUN/memory.json                      the successor memory's gates fitted on val (train.memory = true)

Determinism: the randomness of step s (hard negatives, dropout) is drawn from generators seeded with
(seed, rank, s), and the batches of epoch e are a pure function of (seed, e). A checkpoint therefore
only needs weights, optimizer state and the loop position for `resume=True` to continue bit-for-bit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from nextvec.config import LVMConfig, TrainConfig, resolve_selection
from nextvec.data.dataset import StoreWindows, WindowDataset
from nextvec.data.sampler import DiverseBatchSampler
from nextvec.data.streaming import InRamWindows, StreamingWindows, use_streaming
from nextvec.data.windows import seeded_subset, window_subset, window_targets
from nextvec.errors import NextvecError, check_fingerprint
from nextvec.losses import HEAD_TERMS, TERMS, combined_loss, train_stats
from nextvec.models.registry import build_model
from nextvec.store import open_store
from nextvec.train import distributed
from nextvec.run.checkpoint import load_optimizer, load_weights, read_checkpoint, save_checkpoint
from nextvec.store.format import write_sealed_json
from nextvec.run.folder import RunFolder, read_run_json
from nextvec.train.schedule import EarlyStopping, get_lr

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
def validate(model: torch.nn.Module, ds: StoreWindows | WindowDataset, loss_fn: Callable, batch_size: int,
             store_std: np.ndarray) -> dict:
    """Mean loss terms (in-batch negatives only), cosine of y_cos, and the median per-dimension std ratio
    of y_dec to the train data (1.0 = same spread; well below 1 = collapse toward the mean)."""
    was_training = model.training
    model.eval()
    sums, n, y_decs = {}, 0, []
    for i in range(0, len(ds), batch_size):
        b = ds.get_batch(torch.arange(i, min(i + batch_size, len(ds))))
        pred = model(b.context, b.mask, b.target)
        _, parts = loss_fn(pred, b.target)
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


def _val_energy_score(model, ds: StoreWindows | WindowDataset, batch_size: int) -> float:
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


def _as_config(config) -> LVMConfig:
    if config is None:
        return LVMConfig()
    if isinstance(config, LVMConfig):
        return config
    try:
        return LVMConfig.model_validate(config)
    except Exception as e:
        raise NextvecError(f"invalid config: {e}") from e



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
    folder = RunFolder(out_dir)
    folder.check_resume(resume)
    if resume and config is None:
        config = read_run_json(folder.root, "config.json")
    cfg, store = _resolve_config(config, store_path)
    start = _start_checkpoint(cfg, store, folder.last if resume else (cfg.train.init_from or None), resume)
    env = distributed.setup(cfg.train.device)
    try:
        run = _setup(cfg, store, env, folder, start, resume)
        _set_threads(run)
        stop_reason = _run_steps(run, stop_after)
        summary = _finish(run, stop_reason)
    finally:
        distributed.teardown(env)
    if env.is_main and cfg.train.memory and not cfg.train.overfit and stop_reason != "stop_after":
        from nextvec.train.memory import fit_run_memory  # the run's part of the recipe: fitted on val

        t0 = time.perf_counter()
        summary["memory"] = {**fit_run_memory(store, folder.root), "seconds": round(time.perf_counter() - t0, 1)}
        write_sealed_json(folder.root / "summary.json", summary, indent=2)
    return summary


@dataclass
class _Run:
    """What one training run holds between its pieces (setup, step, validate-and-keep, finish)."""

    cfg: LVMConfig
    store: object
    env: distributed.DistEnv
    folder: RunFolder
    train_src: InRamWindows | StreamingWindows
    val_ds: StoreWindows
    streaming: bool
    model: torch.nn.Module
    loss_fn: Callable  # combined_loss with the run's weights and train statistics bound
    optimizer: torch.optim.Optimizer
    stopping: EarlyStopping
    # where the loop is: global step, epoch, batch within it, step of the best validation, seconds run
    loop: dict = field(default_factory=lambda: {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_step": None,
                                                "elapsed_s": 0.0})
    last_val: dict | None = None
    ddp_model: torch.nn.Module | None = None
    step_seconds: float = 0.0
    steps_run: int = 0


def _resolve_config(config, store_path):
    """-> (the config with model.dim resolved to the store's, the store); refuses a mismatch before any work."""
    cfg = _as_config(config)
    cfg = cfg.model_copy(update={"train": resolve_selection(cfg.train, cfg.model.head)})
    if cfg.train.select_metric not in VAL_METRICS:
        raise NextvecError(f"train.select_metric {cfg.train.select_metric!r} is not one of {', '.join(VAL_METRICS)}")
    store = open_store(store_path)
    if cfg.model.dim not in (0, store.dim):
        raise NextvecError(f"model.dim {cfg.model.dim} does not match the store's vectors ({store.dim}-d)")
    return cfg.model_copy(update={"model": cfg.model.resolved(store.dim)}), store


def _start_checkpoint(cfg: LVMConfig, store, start_from, resume: bool) -> tuple[dict, dict] | None:
    """(tensors, meta) of the checkpoint to start from (resume, or train.init_from), if any; refused before any
    data is read when it was made for another encoder's store or holds another model."""
    if start_from is None:
        return None
    tensors, meta = read_checkpoint(start_from, kind="lvm")
    what = f"checkpoint {meta['path']}" if resume else f"train.init_from checkpoint {meta['path']}"
    check_fingerprint(store.fingerprint, meta["fingerprint"], what)
    mine = cfg.model.model_dump(mode="json")
    if meta["model_config"] != mine:
        diff = {k: (v, meta["model_config"].get(k)) for k, v in mine.items() if meta["model_config"].get(k) != v}
        raise NextvecError(f"{what} holds another model config (this run / the checkpoint: {diff}); "
                           + ("model.* cannot change on --resume" if resume else "set model.* to match it"))
    return tensors, meta


def _data(cfg: LVMConfig, store, env):
    """-> (train windows, val dataset, streaming?): the split in RAM, or streamed when larger than
    train.max_ram_gb; windows never cross documents."""
    tc, T = cfg.train, cfg.model.context_length
    streaming = use_streaming(store, tc)
    train_targets = None if streaming else window_targets(store, "train")
    if tc.train_windows:
        train_targets = seeded_subset(train_targets, tc.train_windows, tc.seed)
    if tc.overfit:
        train_targets = seeded_subset(train_targets, tc.overfit, tc.seed)
        val_split, val_targets = "train", train_targets  # the sanity check: fit and measure the same windows
    else:
        val_split, val_targets = "val", window_subset(store, "val", tc.val_max_windows, tc.seed)[0]
    if len(val_targets) == 0:
        raise NextvecError(f"the {val_split} split of {store.root} has no windows to validate on; "
                           "ingest with a val fraction > 0")
    if streaming:  # a split larger than train.max_ram_gb: read in shuffled blocks of documents
        train_src = StreamingWindows(store, T, cfg.loss.hard_negatives, tc.batch_size, tc.seed,
                                     (env.rank, env.world_size), tc.shuffle_buffer, env.device)
    else:
        train_ds = WindowDataset(store, "train", T, cfg.loss.hard_negatives, train_targets, env.device)
        train_src = InRamWindows(train_ds, DiverseBatchSampler(train_ds.doc, tc.batch_size, tc.max_windows_per_doc,
                                                               tc.seed, env.rank, env.world_size))
    val_ds = StoreWindows(store, val_split, val_targets, T, env.device)  # rows read per batch: no O(N) table
    if train_src.n_batches(0) == 0:
        raise NextvecError(f"{len(train_src)} training windows make no full batch of {tc.batch_size} per "
                           f"process; lower train.batch_size")
    return train_src, val_ds, streaming


def _setup(cfg: LVMConfig, store, env, folder: RunFolder, start, resume: bool) -> _Run:
    """Data, model, loss and optimizer; the start checkpoint's weights (and, on resume, optimizer state and
    loop position) loaded; the run folder started on rank 0."""
    tc = cfg.train
    train_src, val_ds, streaming = _data(cfg, store, env)
    torch.manual_seed(tc.seed)
    model = build_model(cfg.model).to(env.device)
    loss_fn = partial(combined_loss, cfg.loss, train_stats(store.mean, store.std, env.device))
    run = _Run(cfg, store, env, folder, train_src, val_ds, streaming, model, loss_fn, make_optimizer(model, tc),
               EarlyStopping(tc.select_mode, tc.patience))
    if start is not None:
        tensors, meta = start
        load_weights(model, tensors, meta["path"])
    if resume:
        load_optimizer(run.optimizer, tensors, meta)  # the config's hyperparameters win
        loop = dict(meta["loop"])
        run.stopping.best, run.stopping.bad_evals = loop.pop("best"), loop.pop("bad_evals")
        run.loop.update(loop)
        run.last_val = meta.get("val")
    if env.is_main:
        folder.start(cfg, run.loop["step"] if resume else None, tensorboard=tc.logger == "tensorboard")
    run.ddp_model = distributed.wrap(model, env)
    return run


def _set_threads(run: _Run) -> None:
    """torch's CPU threads: train.threads, else the count a resumed run started with, else (on CPU) the cores
    other programs leave idle, shared by the processes of this node (nextvec.train.threads)."""
    import os

    from nextvec.train.threads import idle_core_threads

    n = run.cfg.train.threads or run.loop.get("threads")
    if not n and run.env.device.type == "cpu":
        idle = idle_core_threads()
        n = idle and max(1, idle // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if n:
        torch.set_num_threads(int(n))
        run.loop["threads"] = int(n)


def _checkpoint(run: _Run, path: Path, with_optimizer: bool) -> None:
    cfg = run.cfg
    meta = {
        "model_config": cfg.model.model_dump(mode="json"),
        "train_config": cfg.train.model_dump(mode="json"),
        "loss_config": cfg.loss.model_dump(mode="json"),
        "config": cfg.model_dump(mode="json"),
        "step": run.loop["step"],
        "fingerprint": run.store.fingerprint,
        "dim": run.store.dim,
        "context_length": cfg.model.context_length,
        "store": str(run.store.root),
        "loop": {**run.loop, "best": run.stopping.best, "bad_evals": run.stopping.bad_evals},
        "val": run.last_val,
        "params": run.model.num_params(),
        "torch": torch.__version__,
    }
    save_checkpoint(path, run.model, meta, run.optimizer if with_optimizer else None, kind="lvm")


def _validate_and_keep(run: _Run, step: int) -> bool:
    """Validate (rank 0), keep the best and last checkpoints; -> whether patience ran out."""
    tc = run.cfg.train
    run.last_val = validate(run.model, run.val_ds, run.loss_fn, tc.batch_size, run.store.std)
    run.folder.log({"step": step, **run.last_val})
    if step == 0:
        run.loop["val_cosine_0"] = run.last_val["val/cosine"]
    if run.stopping.update(run.last_val[tc.select_metric]):
        run.loop["best_step"] = step
        _checkpoint(run, run.folder.best, with_optimizer=False)
    _checkpoint(run, run.folder.last, with_optimizer=True)
    return run.stopping.should_stop


def _train_step(run: _Run, gen: torch.Generator) -> dict:
    """One optimizer step on the next batch -> its metrics record (step, epoch, lr, every loss term, grad_norm)."""
    tc, loop = run.cfg.train, run.loop
    step = loop["step"]
    gen.manual_seed(step_seed(tc.seed, run.env.rank, step))  # hard negatives
    dropout_seed = step_seed(tc.seed, run.env.rank, step) + 1
    if run.env.device.type == "cuda":
        torch.cuda.manual_seed(dropout_seed)
    else:
        torch.default_generator.manual_seed(dropout_seed)
    batch = run.train_src.batch(loop["epoch"], loop["batch_in_epoch"], gen)
    lr = get_lr(step, tc.lr, tc.warmup_steps, tc.max_steps, tc.min_lr_ratio)
    for group in run.optimizer.param_groups:
        group["lr"] = lr

    pred = run.ddp_model(batch.context, batch.mask, batch.target, run.cfg.loss.energy_samples)
    loss, parts = run.loss_fn(pred, batch.target, batch.negatives, batch.negatives_mask)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), tc.grad_clip if tc.grad_clip > 0 else math.inf)
    run.optimizer.step()

    loop["step"], loop["batch_in_epoch"] = step + 1, loop["batch_in_epoch"] + 1
    record = {"step": step + 1, "epoch": loop["epoch"], "lr": lr, **{k: float(v) for k, v in parts.items()},
              "grad_norm": float(grad_norm)}
    if not math.isfinite(record["loss"]):
        raise NextvecError(f"loss became {record['loss']} at step {step + 1}: {record}; lower train.lr "
                           "or check the loss weights")
    return record


def _run_steps(run: _Run, stop_after: int | None) -> str:
    """Step until train.max_steps, the time budget, early stopping or `stop_after` -> why it stopped."""
    from tqdm.auto import tqdm

    tc, loop, main = run.cfg.train, run.loop, run.env.is_main
    # with a time budget the total is unknown until the pace is (_bar_limit sets it after the first steps)
    bar = tqdm(total=None if tc.max_minutes else tc.max_steps, initial=loop["step"], dynamic_ncols=True,
               desc=f"train {run.cfg.model.name} ({f'{tc.max_minutes:g}-min budget' if tc.max_minutes else 'max_steps'})",
               disable=not (main and tc.progress))
    shown = [t for t in TERMS if getattr(run.cfg.loss, t) > 0] + [t for t in HEAD_TERMS if t == run.cfg.model.head]
    gen = torch.Generator()
    started = time.perf_counter() - loop["elapsed_s"]
    stop_reason, last_shown = "max_steps", 0.0
    run.train_src.prefetch(loop["epoch"], loop["batch_in_epoch"])  # a streamed first block loads meanwhile
    # The model before any step is a candidate too: with a zero-initialised residual over a prior it IS
    # that prior, so the best checkpoint is never worse on val than where training started.
    if main and loop["step"] == 0:
        _validate_and_keep(run, 0)
    pace_from = (time.perf_counter(), loop["step"])  # the bar's pace counts from here (after the step-0 validation)
    while loop["step"] < tc.max_steps:
        if loop["batch_in_epoch"] >= run.train_src.n_batches(loop["epoch"]):
            loop["epoch"], loop["batch_in_epoch"] = loop["epoch"] + 1, 0
            continue
        t0 = time.perf_counter()
        record = _train_step(run, gen)
        if main:
            run.folder.log(record, flush=False)
            bar.update(1)
            if time.perf_counter() - last_shown > 0.5:
                bar.set_postfix({k: f"{record[k]:.4f}" for k in ["loss", *shown]}, refresh=False)
                _bar_limit(bar, run, time.perf_counter() - started, time.perf_counter() - pace_from[0],
                           loop["step"] - pace_from[1])
                last_shown = time.perf_counter()
        run.step_seconds += time.perf_counter() - t0
        run.steps_run += 1
        loop["elapsed_s"] = time.perf_counter() - started
        reason = _after_step(run, stop_after)
        if reason:
            stop_reason = reason
            break
    bar.total = bar.n  # the run ends here, whatever the last projection said
    bar.close()
    return stop_reason


def _bar_limit(bar, run: _Run, elapsed: float, paced_s: float, paced_steps: int) -> None:
    """Point the progress bar's total (and so its ETA) at whichever limit ends the run first: train.max_steps,
    or the steps train.max_minutes allows (`elapsed` of it spent) at the pace of the last `paced_steps` steps
    in `paced_s` seconds (validations included); say which."""
    tc, step = run.cfg.train, run.loop["step"]
    pace = paced_steps / max(paced_s, 1e-9)
    by_time = step + (tc.max_minutes * 60 - elapsed) * pace if tc.max_minutes and paced_steps else None
    if by_time is not None and by_time < tc.max_steps:
        bar.total, limit = max(step, int(by_time)), f"{tc.max_minutes:g}-min budget"
    else:
        bar.total, limit = tc.max_steps, f"max_steps {tc.max_steps}"
    bar.set_description(f"train {run.cfg.model.name} ({limit})", refresh=False)


def _after_step(run: _Run, stop_after: int | None) -> str | None:
    """Validate or checkpoint when due -> the reason to stop now, if there is one."""
    tc, loop, env = run.cfg.train, run.loop, run.env
    out_of_time = distributed.any_rank(tc.max_minutes > 0 and loop["elapsed_s"] >= tc.max_minutes * 60, env)
    interrupted = stop_after is not None and loop["step"] >= stop_after
    finishing = loop["step"] >= tc.max_steps or out_of_time or interrupted
    if loop["step"] % tc.val_every == 0 or finishing:
        stop = _validate_and_keep(run, loop["step"]) if env.is_main else False
        if distributed.from_main(stop, env):
            return "early_stopping"
    elif tc.checkpoint_every and loop["step"] % tc.checkpoint_every == 0 and env.is_main:
        run.folder.flush()  # every record up to the checkpoint is on disk before it
        _checkpoint(run, run.folder.last, with_optimizer=True)
    if out_of_time:
        return "max_minutes"
    if interrupted:
        return "stop_after"
    return None


def untrained_warning(loop: dict, last_val: dict | None, metric: str) -> str | None:
    """A warning when the best checkpoint is the untrained step 0 although val cosine improved since: the
    selection metric does not see what training improves."""
    start = loop.get("val_cosine_0")
    if loop.get("best_step") != 0 or start is None or not last_val or last_val["val/cosine"] <= start + 0.002:
        return None
    return (f"the best checkpoint is the untrained step 0 by {metric}, though val cosine rose from {start:.4f} "
            f"to {last_val['val/cosine']:.4f}: select by a metric training improves (train.select_metric=auto "
            "picks val/cosine for the point head)")


def short_run_warning(epochs: float, stop_reason: str, minutes: float) -> str | None:
    """A warning when the time budget ended the run before it saw the training data twice."""
    if stop_reason != "max_minutes" or epochs >= 2:
        return None
    return (f"the {minutes:g}-minute budget ended training after {epochs:.2f} epochs (validation usually peaks after "
            "2-6): give it more time (train.max_minutes, or the demo's --minutes), or free the CPU; a busy "
            "machine slows training most when torch uses more threads than there are idle cores (train.threads)")


def _finish(run: _Run, stop_reason: str) -> dict:
    """Close the data source and the metrics log; write RUN/summary.json (rank 0) -> the summary."""
    tc, loop, env = run.cfg.train, run.loop, run.env
    run.train_src.close()
    summary = {
        "run_dir": str(run.folder.root),
        "model": run.cfg.model.name,
        "params": run.model.num_params(),
        "steps": loop["step"],
        "epochs": loop["epoch"] + loop["batch_in_epoch"] / max(1, run.train_src.n_batches(loop["epoch"])),
        "stop_reason": stop_reason,
        "select_metric": tc.select_metric,
        "best": run.stopping.best,
        "best_step": loop["best_step"],
        "final_val": run.last_val,
        "train_windows": len(run.train_src),
        "data_source": "stream" if run.streaming else "memory",
        "val_windows": len(run.val_ds),
        "world_size": env.world_size,
        "threads": torch.get_num_threads(),
        "train_seconds": run.step_seconds,
        "samples_per_s": (run.steps_run * tc.batch_size * env.world_size / run.step_seconds
                          if run.step_seconds else None),
    }
    if tc.overfit and run.last_val is not None:
        summary["train_cosine"] = run.last_val["val/cosine"]
    warnings = [w for w in (untrained_warning(loop, run.last_val, tc.select_metric),
                            short_run_warning(summary["epochs"], stop_reason, tc.max_minutes)) if w]
    if warnings:
        summary["warnings"] = warnings
    if env.is_main:
        run.folder.close()
        write_sealed_json(run.folder.root / "summary.json", summary, indent=2)
    distributed.barrier(env)
    return summary
