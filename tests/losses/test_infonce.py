"""Symmetric InfoNCE with in-batch and hard negatives, on one-hot vectors."""

import math

import torch

from nextvec.losses import infonce

E = torch.eye(4)


def test_one_hot_batch_matches_hand_value():
    # 3 predictions equal their one-hot targets; tau = 1: logits = I, each row -log(e / (e + 2))
    loss = infonce(E[:3], E[:3], temperature=1.0)
    assert math.isclose(loss.item(), math.log(math.e + 2) - 1, rel_tol=1e-6)


def test_temperature_sharpens():
    hi = infonce(E[:3], E[:3], temperature=1.0)
    lo = infonce(E[:3], E[:3], temperature=0.1)
    assert lo < hi
    assert math.isclose(lo.item(), math.log(math.exp(10) + 2) - 10, rel_tol=1e-3)  # float32


def test_hard_negatives_enter_the_prediction_side_only():
    y = E[:2]
    neg = torch.stack([E[3:4], E[2:3]])  # (2, 1, 4): orthogonal to everything -> logit 0
    loss = infonce(y, E[:2], neg, torch.ones(2, 1, dtype=torch.bool), temperature=1.0)
    fwd = math.log(math.e + 2) - 1  # positive + in-batch negative + hard negative
    bwd = math.log(math.e + 1) - 1  # target side: predictions only
    assert math.isclose(loss.item(), 0.5 * (fwd + bwd), rel_tol=1e-6)


def test_masked_hard_negatives_count_for_nothing():
    y = E[:2]
    neg = torch.stack([E[:1], E[1:2]])  # would equal the positives, but masked
    masked = infonce(y, E[:2], neg, torch.zeros(2, 1, dtype=torch.bool), temperature=1.0)
    none = infonce(y, E[:2], temperature=1.0)
    assert math.isclose(masked.item(), none.item(), rel_tol=1e-6)


def test_duplicate_targets_are_not_negatives_of_each_other():
    # targets 0 and 1 are the same vector: neither may be the other's negative
    t = torch.stack([E[0], E[0], E[1]])
    y = t.clone()
    loss = infonce(y, t, temperature=1.0)
    # every row sees its positive (logit 1) and one real negative (logit 0 or, for row 2, two of 0 minus the
    # masked duplicates): rows 0,1: {1, 0}; row 2: {1, 0, 0}; same by symmetry for columns
    rows = [math.log(math.e + 1) - 1] * 2 + [math.log(math.e + 2) - 1]
    assert math.isclose(loss.item(), sum(rows) / 3, rel_tol=1e-6)


def test_gradient_pushes_toward_the_positive():
    y = torch.nn.functional.normalize(torch.tensor([[1.0, 1.0, 0, 0], [0, 1.0, 1.0, 0]]), dim=-1).requires_grad_()
    infonce(y, E[:2], temperature=0.5).backward()
    assert y.grad[0, 0] < 0 and y.grad[1, 1] < 0  # descent increases the positive coordinate
