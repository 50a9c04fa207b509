"""MSE and cosine losses on hand-computable tensors."""

import torch

from nextvec.losses import cosine, mse


def test_mse_sums_dims_and_averages_rows():
    y = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 3.0]])
    # row 0: 1 + 1 = 2; row 1: 9 -> mean 5.5
    assert mse(y, t).item() == 5.5


def test_cosine_loss():
    y_cos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[2.0, 0.0], [1.0, 0.0]])  # cos 1 and cos 0
    assert cosine(y_cos, t).item() == 0.5
