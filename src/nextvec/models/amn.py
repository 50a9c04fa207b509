"""Attention Mixture Network: start from the mean of the context, attend over the context with a query
built from that mean, and learn a residual on top (the prior is set by `residual_prior`, "mean" by
default for this family, and the residual head starts at zero so training starts at the mean)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nextvec.config import ModelConfig
from nextvec.models.common import LVM, masked_mean


class AMNModel(LVM):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = self.config
        self.num_heads = c.num_heads
        self.q = nn.Linear(c.dim, c.hidden_dim)
        self.kv = nn.Linear(c.dim, 2 * c.hidden_dim)
        self.mean_proj = nn.Linear(c.dim, c.hidden_dim)
        self.ln = nn.LayerNorm(c.hidden_dim)
        self.mlp = nn.Sequential(nn.Linear(c.hidden_dim, 4 * c.hidden_dim), nn.GELU(),
                                 nn.Linear(4 * c.hidden_dim, c.hidden_dim))
        self.ln_f = nn.LayerNorm(c.hidden_dim)
        self.drop = nn.Dropout(c.dropout)

    def encode(self, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, D = context.shape
        nh, H = self.num_heads, self.config.hidden_dim
        mean = masked_mean(context, mask)  # (B, D)
        q = self.q(mean).view(B, nh, 1, H // nh)  # one query per head, from the mean
        k, v = self.kv(context).view(B, T, 2, nh, H // nh).permute(2, 0, 3, 1, 4)  # (B, nh, T, hs)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])  # (B, nh, 1, hs)
        h = self.mean_proj(mean) + self.drop(a.reshape(B, H))
        h = h + self.drop(self.mlp(self.ln(h)))
        return self.ln_f(h)  # (B, H)
