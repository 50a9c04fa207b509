"""Moment matching, variance hinge and covariance against the store's train statistics, including
dimensions whose train std is 0 (MiniLM has three)."""

import math

import torch

from nextvec.losses import covariance, moment, off_diagonal, train_stats, variance


def batch_with_stats(mean, std, n=64, seed=0):
    """(n, D) whose per-dim population mean/std are exactly `mean`/`std`."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, len(mean), generator=g)
    z = (z - z.mean(0)) / z.std(0, unbiased=False)
    return z * torch.tensor(std) + torch.tensor(mean)


def test_moment_loss_is_zero_when_stats_match():
    mean, std = [0.5, -1.0, 0.0], [0.1, 2.0, 1.0]
    y = batch_with_stats(mean, std)
    assert moment(y, train_stats(mean, std)).item() < 1e-6


def test_moment_loss_counts_gaps_in_units_of_std():
    mean, std = [0.0, 0.0], [0.1, 2.0]
    y = batch_with_stats([0.1, 2.0], std)  # means off by exactly one std in both dims
    assert math.isclose(moment(y, train_stats(mean, std)).item(), 1.0, rel_tol=1e-3)
    y = batch_with_stats(mean, [0.2, 4.0])  # std doubled: (2 - 1)^2 = 1
    assert math.isclose(moment(y, train_stats(mean, std)).item(), 1.0, rel_tol=1e-3)


def test_zero_std_dimensions_are_masked_not_nan():
    mean, std = [0.0, 0.3, 0.0], [1.0, 0.0, 1.0]
    y = batch_with_stats([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]).requires_grad_()
    stats = train_stats(mean, std)
    for loss in (moment, variance, covariance):
        value = loss(y, stats)
        assert torch.isfinite(value)
        y2 = y.detach().clone()
        y2[:, 1] = 123.0  # whatever happens on the constant dimension does not matter
        assert math.isclose(loss(y2, stats).item(), value.item(), rel_tol=1e-5, abs_tol=1e-7)
        value.backward()
        assert torch.isfinite(y.grad).all()
        y.grad = None


def test_variance_hinge():
    stats = train_stats([0, 0], [0.5, 0.5])
    collapsed = torch.zeros(8, 2)  # every prediction the same: hinge ~1 per dim
    assert math.isclose(variance(collapsed, stats).item(), 1 - math.sqrt(1e-4), rel_tol=1e-6)
    wide = batch_with_stats([0, 0], [1.0, 1.0])  # twice the data std: no penalty
    assert variance(wide, stats).item() == 0.0
    half = batch_with_stats([0, 0], [0.25, 0.25])  # half the data std: ~0.5
    assert math.isclose(variance(half, stats).item(), 0.5, abs_tol=1e-3)


def test_off_diagonal():
    m = torch.arange(9.0).view(3, 3)
    assert off_diagonal(m).tolist() == [1, 2, 3, 5, 6, 7]


def test_covariance_zero_for_uncorrelated_and_hand_value_for_copies():
    h = torch.tensor([[1.0, 1, 1], [1, -1, 1], [-1, 1, -1], [-1, -1, -1]])  # col 0 and 2 equal, col 1 orthogonal
    stats = train_stats([0, 0, 0], [1.0, 1.0, 1.0])
    assert covariance(h[:, :2], train_stats([0, 0], [1.0, 1.0])).item() == 0.0
    # cov = 4/3 between cols 0 and 2 (both entries of the pair), D = 3: 2 * (4/3)^2 / 3
    assert math.isclose(covariance(h, stats).item(), 2 * (4 / 3) ** 2 / 3, rel_tol=1e-6)
