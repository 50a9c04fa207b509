"""The recurrent LVMs (GRU, LSTM) and running RNNs over LEFT-padded contexts so that padding never
touches the state.

    GRUModel   stacked pre-norm GRU blocks with residual connections, read out at the last real step
    LSTMModel  a plain stacked LSTM over the real context steps, read out at the last one

Contexts arrive right-aligned (padding first). Each row is rotated so its real vectors come first,
packed by length, run, and the output at each row's last real step is returned.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from nextvec.config import ModelConfig
from nextvec.models.common import LVM


def left_to_right_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, C) with the L_b real steps last -> (B, T, C) with them first (same order)."""
    B, T, C = x.shape
    src = (torch.arange(T, device=x.device).unsqueeze(0) + (T - lengths).unsqueeze(1)) % T  # (B, T)
    return x.gather(1, src.unsqueeze(-1).expand(B, T, C))


def pack_left_padded(x: torch.Tensor, mask: torch.Tensor) -> PackedSequence:
    """Pack a left-padded batch x (B, T, C), mask (B, T) into a PackedSequence of the real steps."""
    lengths = mask.sum(1)
    return pack_padded_sequence(left_to_right_padded(x, lengths), lengths.cpu(), batch_first=True,
                                enforce_sorted=False)


def last_step(packed: PackedSequence) -> torch.Tensor:
    """Output at each sequence's last real step, in the original batch order: (B, C)."""
    batch_sizes = packed.batch_sizes  # (T_max,) sequences still running at each step (sorted order)
    lengths = (batch_sizes.unsqueeze(0) > torch.arange(int(batch_sizes[0])).unsqueeze(1)).sum(1)  # sorted
    starts = torch.cat([torch.zeros(1, dtype=torch.long), batch_sizes.cumsum(0)[:-1]])  # offset of step t
    rows = starts[lengths - 1] + torch.arange(len(lengths))  # packed row of sorted seq i's last step
    out = packed.data[rows.to(packed.data.device)]
    if packed.unsorted_indices is not None:
        out = out[packed.unsorted_indices]
    return out


def map_packed(fn, packed: PackedSequence) -> PackedSequence:
    """Apply a per-step function (LayerNorm, Linear, residual add) to packed data."""
    return packed._replace(data=fn(packed.data))


class RecurrentEncoder(nn.Module):
    """Input projection, then `num_layers` pre-norm residual RNN blocks: x = x + RNN(LayerNorm(x)).

    With `residual_blocks=False` it is a plain stacked RNN (one cuDNN-style call over all layers).
    """

    def __init__(self, rnn_cls, dim: int, hidden_dim: int, num_layers: int, dropout: float,
                 residual_blocks: bool):
        super().__init__()
        self.inp = nn.Linear(dim, hidden_dim)
        self.residual_blocks = residual_blocks
        if residual_blocks:
            self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim) for _ in range(num_layers))
            self.rnns = nn.ModuleList(rnn_cls(hidden_dim, hidden_dim, batch_first=True) for _ in range(num_layers))
        else:
            self.rnns = nn.ModuleList([rnn_cls(hidden_dim, hidden_dim, num_layers=num_layers, batch_first=True,
                                               dropout=dropout if num_layers > 1 else 0.0)])
        self.drop = nn.Dropout(dropout)
        self.out_norm = nn.LayerNorm(hidden_dim)

    def forward(self, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """context (B, T, D), mask (B, T) -> h (B, H) at the last real step."""
        x = self.inp(context)  # (B, T, H)
        if bool(mask.all()):  # no padding in the batch (the common case): skip packing
            if self.residual_blocks:
                for norm, rnn in zip(self.norms, self.rnns):
                    x = x + self.drop(rnn(norm(x))[0])
            else:
                x = self.rnns[0](x)[0]
            return self.out_norm(x[:, -1])
        p = pack_left_padded(x, mask)
        if self.residual_blocks:
            for norm, rnn in zip(self.norms, self.rnns):
                y = rnn(map_packed(norm, p))[0]
                p = p._replace(data=p.data + self.drop(y.data))
        else:
            p = self.rnns[0](p)[0]
        return self.out_norm(last_step(p))


class RecurrentLVM(LVM):
    """An LVM whose body is a RecurrentEncoder; a family names its cell and block layout."""

    rnn_cls: type[nn.RNNBase]
    residual_blocks: bool

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = self.config
        self.body = RecurrentEncoder(self.rnn_cls, c.dim, c.hidden_dim, c.num_layers, c.dropout, self.residual_blocks)

    def encode(self, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.body(context, mask)  # (B, H)


class GRUModel(RecurrentLVM):
    """Stacked pre-norm GRU blocks with residual connections."""

    rnn_cls, residual_blocks = nn.GRU, True


class LSTMModel(RecurrentLVM):
    """A plain stacked LSTM (one call over all layers)."""

    rnn_cls, residual_blocks = nn.LSTM, False
