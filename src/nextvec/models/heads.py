"""Sampling heads: draw next vectors from p(next | context) instead of predicting its mean.

A point head (MSE / cosine) predicts the conditional MEAN of all plausible next sentences; a set of such
predictions huddles around one direction and rollouts converge to a fixed point. A sampling head is an
extra module on top of a body's summary h (B, H) that maps noise to samples:

    energy  CALM (Shao et al. 2025) / engression (Shen & Meinshausen 2024): an MLP takes [cond, noise]
            and outputs a sample; trained with the fair energy score over m samples per window.
    flow    a MAR-style MLP denoiser (Li et al. 2024) trained with rectified flow matching (Liu et al.
            2022; Lipman et al. 2023) and sampled with Euler steps; conditioning dropout in training
            gives classifier-free guidance (Ho & Salimans 2022) at sampling time.

Both condition on [h, the point head's unit prediction], work on unit vectors scaled by sqrt(D) (so a
coordinate has variance ~1), and return unit directions; the model rescales them to the point
head's norm, so samples live where `y_dec` lives. The point outputs (y_dec, y_cos) stay beside them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def fair_energy_score(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fair (unbiased) energy score, per row: samples (B, m, D), target (B, D) -> (B,).

    ES = mean_i ||x_i - y|| - 1 / (2 m (m - 1)) * sum_{i != j} ||x_i - x_j||   (Gneiting & Raftery 2007);
    with m = 1 it is the distance of the one sample to the target. Lower is better; 0 only for a point
    mass on the target. The small epsilon keeps the gradient of ||.|| finite at 0.
    """
    B, m, D = samples.shape
    fit = (samples - target[:, None]).pow(2).sum(-1).add(1e-12).sqrt().mean(1)  # (B,)
    if m == 1:
        return fit
    diff = (samples[:, :, None] - samples[:, None]).pow(2).sum(-1)  # (B, m, m)
    off = ~torch.eye(m, dtype=torch.bool, device=samples.device)
    spread = diff[:, off].add(1e-12).sqrt().sum(1) / (m * (m - 1))  # mean over ordered pairs i != j
    return fit - 0.5 * spread


class ResBlock(nn.Module):
    """MAR-style residual MLP block whose LayerNorm is modulated by the conditioning (adaLN)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))
        nn.init.zeros_(self.ada[-1].weight)
        nn.init.zeros_(self.ada[-1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.ada(c).chunk(3, dim=-1)
        return x + gate.add(1.0) * self.mlp(self.norm(x) * (1 + scale) + shift)


class Denoiser(nn.Module):
    """x (N, I) and conditioning c (N, W) -> (N, O) through `depth` adaLN residual blocks."""

    def __init__(self, in_dim: int, width: int, depth: int, out_dim: int):
        super().__init__()
        self.inp = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(ResBlock(width) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, out_dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, c)
        return self.out(h)


class EnergyHead(nn.Module):
    """noise (N, E) + conditioning -> a sample: unit(point + t * (g(cond, noise) + W noise)) (CALM's energy
    head). The linear path W noise lets the deviations span every direction (the MLP's output layer alone
    spans at most `width` of them); the temperature t scales the deviation from the point (0 = the point)."""

    def __init__(self, cond_dim: int, dim: int, width: int, depth: int, noise_dim: int):
        super().__init__()
        self.noise_dim = noise_dim
        self.cond = nn.Linear(cond_dim, width)
        self.net = Denoiser(noise_dim, width, depth, dim)
        self.skip = nn.Linear(noise_dim, dim, bias=False)
        self.scale = math.sqrt(dim)

    def forward(self, cond: torch.Tensor, point: torch.Tensor, n: int, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """cond (B, C), point (B, D) unit -> (B, n, D) unit samples."""
        B = cond.shape[0]
        noise = torch.randn(B, n, self.noise_dim, generator=generator, device=cond.device)
        c = self.cond(cond)[:, None]  # (B, 1, W): the adaLN modulation is computed once per window
        deviation = self.net(noise, c) + self.skip(noise)  # (B, n, D)
        return F.normalize(point[:, None] * self.scale + temperature * deviation, dim=-1)  # sqrt(D)-scaled sphere

    def loss(self, cond: torch.Tensor, point: torch.Tensor, target: torch.Tensor, m: int) -> torch.Tensor:
        """Mean fair energy score of m samples per window against the unit target."""
        return fair_energy_score(self(cond, point, m), F.normalize(target, dim=-1)).mean()


def timestep_embedding(t: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1]: (N,) -> (N, width) (Vaswani et al. 2017, as in DiT/MAR)."""
    half = width // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t[:, None].float() * 1000.0 * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def flow_interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rectified flow: x_t = (1 - t) x0 + t x1 and its velocity x1 - x0 (t (N,) broadcast over D)."""
    tt = t[:, None]
    return (1 - tt) * x0 + tt * x1, x1 - x0


class FlowHead(nn.Module):
    """Flow-matching head: noise at t = 0 flows to the next vector (unit, scaled by sqrt(D)) at t = 1."""

    def __init__(self, cond_dim: int, dim: int, width: int, depth: int, cond_dropout: float):
        super().__init__()
        self.cond = nn.Linear(cond_dim, width)
        self.null = nn.Parameter(torch.zeros(width))  # the "no context" conditioning for guidance
        self.time = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.net = Denoiser(dim, width, depth, dim)
        self.cond_dropout = cond_dropout
        self.width = width
        self.scale = math.sqrt(dim)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (..., D), t (N,) (or (1,) for all), c (..., W) broadcastable to x's rows -> velocity (..., D)."""
        temb = self.time(timestep_embedding(t, self.width))  # (N, W)
        return self.net(x, c + (temb if c.dim() == 2 else temb[:, None]))

    def loss(self, cond: torch.Tensor, point: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Flow-matching loss: mean squared error of the predicted velocity, per coordinate."""
        B = target.shape[0]
        c = self.cond(cond)
        if self.training and self.cond_dropout > 0:
            drop = torch.rand(B, device=c.device) < self.cond_dropout
            c = torch.where(drop[:, None], self.null.expand(B, -1), c)
        x1 = F.normalize(target, dim=-1) * self.scale
        x0 = torch.randn_like(x1)
        t = torch.rand(B, device=x1.device)
        xt, v = flow_interpolate(x0, x1, t)
        return (self.velocity(xt, t, c) - v).pow(2).mean()

    def forward(self, cond: torch.Tensor, point: torch.Tensor, n: int, temperature: float = 1.0,
                generator: torch.Generator | None = None, steps: int = 16, guidance: float = 1.0) -> torch.Tensor:
        """Euler integration from t = 0 to 1: cond (B, C) -> (B, n, D) unit samples. `temperature` scales
        the initial noise; guidance w gives v = v_null + w (v_cond - v_null) (w = 1: no guidance)."""
        B, D = point.shape
        c = self.cond(cond)[:, None]  # (B, 1, W), broadcast over the n samples of a window
        x = torch.randn(B, n, D, generator=generator, device=cond.device) * temperature
        guided = guidance != 1.0
        if guided:
            c = torch.cat([c, self.null.expand(B, 1, -1)])  # (2B, 1, W): conditional, then unconditional
        for i in range(steps):
            t = torch.full((1,), i / steps, device=x.device)
            if guided:
                v_c, v_u = self.velocity(torch.cat([x, x]), t, c).chunk(2)
                v = v_u + guidance * (v_c - v_u)
            else:
                v = self.velocity(x, t, c)
            x = x + v / steps
        return F.normalize(x, dim=-1)


def build_head(kind: str, hidden_dim: int, dim: int, cfg) -> nn.Module | None:
    """The sampling head a ModelConfig asks for (None for the point head)."""
    if kind == "point":
        return None
    cond_dim = hidden_dim + dim  # [body summary h, unit point prediction]
    if kind == "energy":
        return EnergyHead(cond_dim, dim, cfg.head_width, cfg.head_depth, cfg.noise_dim)
    if kind == "flow":
        return FlowHead(cond_dim, dim, cfg.head_width, cfg.head_depth, cfg.cond_dropout)
    raise ValueError(f"unknown head {kind!r}")
