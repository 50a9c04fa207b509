"""GRU LVM: stacked pre-norm GRU blocks with residual connections, read out at the last real step."""

from __future__ import annotations

import torch
from torch import nn

from nextvec.config import ModelConfig
from nextvec.models.common import LVM
from nextvec.models.recurrent import RecurrentEncoder


class GRUModel(LVM):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = self.config
        self.body = RecurrentEncoder(nn.GRU, c.dim, c.hidden_dim, c.num_layers, c.dropout, residual_blocks=True)

    def encode(self, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.body(context, mask)  # (B, H)
