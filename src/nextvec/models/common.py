"""Pieces every LVM family shares: the projection head, the residual priors and the `LVM` base class.

A family only implements `encode(context, mask) -> h (B, H)`, a summary of a LEFT-padded context
(mask[:, -1] is always True); `LVM.forward` turns it into `Prediction(y_dec, y_cos)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nextvec.config import ModelConfig
from nextvec.models.base import Prediction
from nextvec.models.heads import build_head


SAMPLING_KNOBS = ("temperature", "guidance", "steps", "prompt_guidance")  # LVMModel.sample's options


class ProjectionHead(nn.Sequential):
    """Linear -> GELU -> LayerNorm -> Linear: hidden (B, H) -> vector (B, D)."""

    def __init__(self, hidden_dim: int, out_dim: int, zero_init: bool = False):
        super().__init__(nn.Linear(hidden_dim, hidden_dim), nn.GELU(), nn.LayerNorm(hidden_dim),
                         nn.Linear(hidden_dim, out_dim))
        if zero_init:  # a residual head that starts at 0 makes training start exactly at the prior
            nn.init.zeros_(self[-1].weight)
            nn.init.zeros_(self[-1].bias)


def masked_mean(context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real vectors: context (B, T, D), mask (B, T) -> (B, D)."""
    w = mask.to(context.dtype).unsqueeze(-1)  # (B, T, 1)
    return (context * w).sum(1) / w.sum(1).clamp_min(1.0)


class ResidualPrior(nn.Module):
    """The prediction a residual is added to: context mean, last vector, or learned recency weights."""

    def __init__(self, kind: str, context_length: int):
        super().__init__()
        self.kind = kind
        if kind == "recency":
            # one logit per position counted from the end (column j = T - j places back); zeros = mean
            self.logits = nn.Parameter(torch.zeros(context_length))

    def forward(self, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.kind == "mean":
            return masked_mean(context, mask)
        if self.kind == "last":
            return context[:, -1]
        if self.kind == "recency":
            T = context.shape[1]
            if T > len(self.logits):
                raise ValueError(f"context of {T} vectors is longer than the model's context_length {len(self.logits)}")
            logits = self.logits[-T:].unsqueeze(0).masked_fill(~mask, float("-inf"))  # (B, T)
            return torch.einsum("bt,btd->bd", logits.softmax(-1), context)
        raise ValueError(f"unknown residual prior {self.kind!r}")


class LVM(nn.Module):
    """Base class: config handling, heads, prior. Subclasses build their body and define `encode`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config = config.resolved()
        if config.dim <= 0:
            raise ValueError("ModelConfig.dim must be set (build models with registry.build_model(config, dim))")
        self.config = config
        self.name = config.name
        H, D = config.hidden_dim, config.dim
        residual = config.residual_prior != "none"
        self.prior = ResidualPrior(config.residual_prior, config.context_length) if residual else None
        self.head = ProjectionHead(H, D, zero_init=residual)
        self.cos_head = ProjectionHead(H, D, zero_init=residual) if config.separate_cos_head else None
        self.sampler = build_head(config.head, H, D, config)

    def _point(self, context: torch.Tensor, mask: torch.Tensor) -> tuple[Prediction, torch.Tensor]:
        """The point prediction and the sampling head's conditioning [h, y_cos] (B, H + D)."""
        context = context * mask.unsqueeze(-1).to(context.dtype)  # padding values never matter
        h = self.encode(context, mask)  # (B, H)
        prior = self.prior(context, mask) if self.prior is not None else 0.0
        y_dec = prior + self.head(h)
        y_cos = F.normalize(prior + self.cos_head(h) if self.cos_head is not None else y_dec, dim=-1)
        h = h.detach() if self.config.head_detach else h
        return Prediction(y_dec, y_cos), torch.cat([h, y_cos.detach()], dim=-1)

    def encode(self, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, context: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None,
                energy_samples: int = 8) -> Prediction:
        """context (B, T, D) left-padded, mask (B, T) bool -> Prediction(y_dec (B, D), y_cos (B, D)).

        In training, pass the target (B, D): a sampling head then adds its loss to `head_losses`
        ({"energy": ...} or {"flow": ...}); going through forward() keeps DDP's gradient hooks in play.
        """
        pred, cond = self._point(context, mask)
        if target is None or self.sampler is None:
            return pred
        if self.config.head == "energy":
            losses = {"energy": self.sampler.loss(cond, pred.y_cos.detach(), target, energy_samples)}
        else:
            losses = {"flow": self.sampler.loss(cond, pred.y_cos.detach(), target)}
        return pred._replace(head_losses=losses)

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction:
        return self(context, mask)

    def sample(self, context: torch.Tensor, mask: torch.Tensor, n: int, generator: torch.Generator | None = None,
               own: int = 0, **knobs) -> torch.Tensor:
        """n draws of the next vector (B, n, D). A point head returns y_dec n times; a sampling head's
        unit samples are scaled to the norm of y_dec, so they live where the point prediction lives.
        `own`: how many of the last context vectors are the model's own draws (a continuation); the head is
        then guided toward the prompt (see `_prompt_guided`). `knobs`: any of SAMPLING_KNOBS (temperature,
        guidance, steps, prompt_guidance); unset or None = the model config's."""
        unknown = set(knobs) - set(SAMPLING_KNOBS)
        if unknown:
            raise TypeError(f"unknown sampling options {sorted(unknown)}; known: {', '.join(SAMPLING_KNOBS)}")
        pred, cond = self._point(context, mask)
        if self.sampler is None:
            return pred.y_dec[:, None].expand(-1, n, -1).clone()
        c = self.config
        k = {"temperature": c.temperature, "guidance": c.guidance, "steps": c.sample_steps,
             "prompt_guidance": c.prompt_guidance, **{name: v for name, v in knobs.items() if v is not None}}
        y_cos, cond = self._prompt_guided(context, mask, own, k["prompt_guidance"], pred.y_cos, cond)
        extra = {} if c.head == "energy" else {"steps": k["steps"] or c.sample_steps, "guidance": k["guidance"]}
        unit = self.sampler(cond, y_cos, n, temperature=k["temperature"], generator=generator, **extra)  # (B, n, D)
        return unit * pred.y_dec.norm(dim=-1, keepdim=True)[:, None]

    def _prompt_guided(self, context: torch.Tensor, mask: torch.Tensor, own: int, g: float, y_cos: torch.Tensor,
                       cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Classifier-free guidance with the prompt as the condition: the point the head samples around becomes
        unit(y_own + g (y_cos - y_own)), where y_own reads only the last `own` context vectors (the model's
        own draws). A model fed its own samples drifts from the prompt's topic step by step; this weighs what
        the prompt adds by g. With no draws of its own in view, or no prompt left in view, or g = 1, the
        point is unchanged (a one-step prediction from real context never is)."""
        if g == 1.0 or own <= 0 or own >= context.shape[1]:
            return y_cos, cond
        mine = mask.clone()
        mine[:, :-own] = False
        y_own = self._point(context, mine)[0].y_cos
        y = F.normalize(y_own + g * (y_cos - y_own), dim=-1)
        return y, torch.cat([cond[:, : -y.shape[-1]], y.detach()], dim=-1)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
