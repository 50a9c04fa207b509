"""Transformer LVM: causal, pre-norm, learned positional embeddings counted from the END of the context
(column j of a left-padded context is always T - j places before the target), read out at the last step."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nextvec.config import ModelConfig
from nextvec.models.common import LVM


class SelfAttention(nn.Module):
    def __init__(self, hidden_dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)
        self.proj = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape  # batch, context length, hidden width
        q, k, v = self.qkv(x).view(B, T, 3, self.num_heads, H // self.num_heads).permute(2, 0, 3, 1, 4)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, H))


class Block(nn.Module):
    """Pre-norm block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, hidden_dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(hidden_dim), nn.LayerNorm(hidden_dim)
        self.attn = SelfAttention(hidden_dim, num_heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(hidden_dim, 4 * hidden_dim), nn.GELU(), nn.Linear(4 * hidden_dim, hidden_dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), allowed))
        return x + self.drop(self.mlp(self.ln2(x)))


def causal_padding_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) real-step mask -> (B, 1, T, T) attention permission: query i sees real keys j <= i.

    Every query also sees itself, so a padded query's softmax row is never empty (no NaN); padded
    queries never feed a real one because real queries never see padded keys.
    """
    T = mask.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=mask.device).tril()
    eye = torch.eye(T, dtype=torch.bool, device=mask.device)
    return ((causal & mask[:, None, :]) | eye).unsqueeze(1)


class TransformerModel(LVM):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = self.config
        self.inp = nn.Linear(c.dim, c.hidden_dim)
        self.pos = nn.Parameter(torch.zeros(c.context_length, c.hidden_dim))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(c.hidden_dim, c.num_heads, c.dropout) for _ in range(c.num_layers))
        self.ln_f = nn.LayerNorm(c.hidden_dim)

    def encode(self, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, D = context.shape
        if T > self.config.context_length:
            raise ValueError(f"context of {T} vectors is longer than the model's context_length {self.config.context_length}")
        x = self.inp(context) + self.pos[-T:]  # (B, T, H); positions counted from the end
        allowed = causal_padding_mask(mask)
        for block in self.blocks:
            x = block(x, allowed)
        return self.ln_f(x[:, -1])  # (B, H)
