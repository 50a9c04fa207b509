"""The one contract every predictor honours, trained model or baseline.

    predict(context (B, T, D) float32, mask (B, T) bool) -> Prediction(y_dec (B, D), y_cos (B, D))

Contexts are LEFT-padded: mask[:, -1] is always True and context[:, -1] is the last real vector.
`y_dec` is the raw prediction (what a decoder wants, spread like the data); `y_cos` is unit-norm
(for cosine and retrieval).

    sample(context, mask, n, generator) -> (B, n, D)

draws n next vectors from the predictor's conditional distribution; a point predictor returns its
`y_dec` n times (`PointSampling`). `autoregress` feeds predictions back (the one rollout loop);
`sample_rollouts` runs K rollouts of every prompt on it (generation and the rollout evaluation).

    predict_windows(predictors, store, targets, T) -> {name: (y_dec (M, D), y_cos (M, D), seconds)}

runs predictors over the windows of a store in batches: the one batched-prediction loop (evaluation,
diagnostics and the sampler baselines all call it).
"""

from __future__ import annotations

import time
from typing import Iterator, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from nextvec.data.windows import gather_windows
from nextvec.errors import NextvecError


class Prediction(NamedTuple):
    y_dec: torch.Tensor  # (B, D) raw
    y_cos: torch.Tensor  # (B, D) L2-normalised
    head_losses: dict | None = None  # a sampling head's training losses, when forward() was given the target


@runtime_checkable
class Predictor(Protocol):
    name: str

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction: ...

    def sample(self, context: torch.Tensor, mask: torch.Tensor, n: int,
               generator: torch.Generator | None = None, **options) -> torch.Tensor: ...


def sample_from(predictor, context: torch.Tensor, mask: torch.Tensor, n: int,
                generator: torch.Generator | None = None, **options) -> torch.Tensor:
    """n draws (B, n, D) from any predictor: its `sample` when it has one, else its y_dec repeated. `options`
    (temperature, guidance, steps; None = the predictor's default) matter to sampling heads only."""
    if not hasattr(predictor, "sample"):
        return PointSampling.sample(predictor, context, mask, n, generator)
    return predictor.sample(context, mask, n, generator, **{k: v for k, v in options.items() if v is not None})


class PointSampling:
    """`sample` for a point predictor: its point `y_dec`, n times (B, n, D); sampling options are ignored."""

    def sample(self, context: torch.Tensor, mask: torch.Tensor, n: int,
               generator: torch.Generator | None = None, **options) -> torch.Tensor:
        y = self.predict(context, mask).y_dec
        return y[:, None].expand(-1, n, -1).clone()


def model_device(model) -> torch.device:
    """Where a predictor's parameters live (cpu for a predictor without any)."""
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def autoregress(seq: torch.Tensor, steps: int, context_length: int | None, next_vector,
                own: int = 0) -> Iterator[torch.Tensor]:
    """Feed predictions back: `steps` times, next_vector(context (B, T, D), mask (B, T), own) -> (B, D) on the
    last `context_length` vectors of seq (B, L, D) (all when None); each result is yielded, then appended.
    `own`: how many of seq's last vectors are already draws rather than given; next_vector is told how many
    of its context's are."""
    for _ in range(steps):
        ctx = seq if context_length is None else seq[:, -context_length:]
        y = next_vector(ctx, torch.ones(ctx.shape[:2], dtype=torch.bool, device=ctx.device), min(own, ctx.shape[1]))
        yield y
        seq = torch.cat([seq, y[:, None]], dim=1)
        own += 1


def sample_rollouts(prompts: torch.Tensor, steps: int, k: int, context_length: int | None, draw) -> torch.Tensor:
    """K rollouts of every prompt (B, L, D) -> (B, K, steps, D). `draw(context, mask, n, own)` -> (B', n, D),
    `own` the number of the context's last vectors that are earlier draws: the first step draws K vectors
    from each prompt at once (a sampler that draws without replacement gives K distinct first steps); every
    later step draws one per rollout from its own context."""
    B, L, D = prompts.shape
    T = context_length
    ctx = prompts if T is None else prompts[:, -T:]
    first = draw(ctx, torch.ones(ctx.shape[:2], dtype=torch.bool, device=ctx.device), k, 0)  # (B, k, D)
    seq = torch.cat([prompts.repeat_interleave(k, 0), first.reshape(B * k, 1, D)], 1)
    out = [first.reshape(B * k, D)]
    out += list(autoregress(seq, steps - 1, T, lambda c, m, own: draw(c, m, 1, own)[:, 0], own=1))
    return torch.stack(out, 1).reshape(B, k, steps, D)


def predict_windows(predictors: dict, store, targets: np.ndarray, context_length: int,
                    batch_size: int = 512) -> dict:
    """Run every predictor on the same windows (those ending before each of `targets`, T = context_length),
    `batch_size` windows at a time, under no_grad; torch modules in eval mode on their own device.

    Returns {name: (y_dec (M, D), y_cos (M, D), seconds)}, float32 numpy.
    """
    if context_length < 1:
        raise NextvecError(f"context length must be >= 1, got {context_length}")
    out = {n: ([], [], 0.0) for n in predictors}
    devices = {}
    for n, p in predictors.items():
        if isinstance(p, torch.nn.Module):
            p.eval()
            devices[n] = model_device(p)
    with torch.no_grad():
        for s in range(0, len(targets), batch_size):
            ctx, mask, _ = gather_windows(store, targets[s:s + batch_size], context_length)
            ctx_t, mask_t = torch.from_numpy(ctx), torch.from_numpy(mask)
            for name, p in predictors.items():
                t0 = time.perf_counter()
                dev = devices.get(name)
                pred = p.predict(ctx_t, mask_t) if dev is None else p.predict(ctx_t.to(dev), mask_t.to(dev))
                dec, cos, sec = out[name]
                dec.append(pred.y_dec.detach().float().cpu().numpy())
                cos.append(pred.y_cos.detach().float().cpu().numpy())
                out[name] = (dec, cos, sec + time.perf_counter() - t0)
    D = store.dim
    return {n: (np.concatenate(d) if d else np.zeros((0, D), np.float32),
                np.concatenate(c) if c else np.zeros((0, D), np.float32), sec) for n, (d, c, sec) in out.items()}
