"""LSTM LVM: a plain stacked LSTM over the real context steps, read out at the last one."""

from __future__ import annotations

import torch
from torch import nn

from nextvec.config import ModelConfig
from nextvec.models.common import LVM
from nextvec.models.recurrent import RecurrentEncoder


class LSTMModel(LVM):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = self.config
        self.body = RecurrentEncoder(nn.LSTM, c.dim, c.hidden_dim, c.num_layers, c.dropout, residual_blocks=False)

    def encode(self, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.body(context, mask)  # (B, H)
