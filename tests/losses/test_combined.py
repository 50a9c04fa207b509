"""The weighted sum and its breakdown."""

import math

import torch

from nextvec.config import LossConfig
from nextvec.losses import TERMS, combined_loss, train_stats
from nextvec.models.base import Prediction


def test_total_is_the_weighted_sum_and_every_term_is_reported():
    torch.manual_seed(0)
    cfg = LossConfig(mse=0.5, cosine=2.0, infonce=0.0, moment=1.0, variance=0.3, covariance=0.1, temperature=0.2)
    stats = train_stats(mean=torch.zeros(6), std=torch.full((6,), 0.4))
    y_dec = torch.randn(10, 6, requires_grad=True)
    y_cos = torch.nn.functional.normalize(y_dec, dim=-1)
    target = torch.randn(10, 6)
    total, parts = combined_loss(cfg, stats, Prediction(y_dec, y_cos), target)
    assert list(parts) == ["loss", *TERMS]
    expected = sum(getattr(cfg, t) * parts[t] for t in TERMS)
    assert math.isclose(total.item(), expected.item(), rel_tol=1e-6)
    assert parts["infonce"].item() > 0  # logged although its weight is 0


def test_a_sampling_head_term_is_weighted_and_reported_last():
    cfg = LossConfig(mse=1.0, cosine=0.0, infonce=0.0, moment=0.0, variance=0.0, covariance=0.0, energy=0.25)
    y = torch.randn(4, 3)
    pred = Prediction(y, torch.nn.functional.normalize(y, dim=-1), head_losses={"energy": torch.tensor(2.0)})
    total, parts = combined_loss(cfg, train_stats(torch.zeros(3), torch.ones(3)), pred, torch.randn(4, 3))
    assert list(parts) == ["loss", *TERMS, "energy"]
    assert math.isclose(total.item(), parts["mse"].item() + 0.25 * 2.0, rel_tol=1e-6)


def test_zero_weight_terms_do_not_reach_the_gradient():
    cfg = LossConfig(mse=1.0, cosine=0.0, infonce=0.0, moment=0.0, variance=0.0, covariance=0.0)
    y = torch.randn(4, 3, requires_grad=True)
    t = torch.randn(4, 3)
    total, _ = combined_loss(cfg, train_stats(torch.zeros(3), torch.ones(3)),
                             Prediction(y, torch.nn.functional.normalize(y, dim=-1)), t)
    total.backward()
    torch.testing.assert_close(y.grad, 2 * (y - t).detach() / 4)  # d/dy of mean_b sum_d (y - t)^2
