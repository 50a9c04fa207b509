"""Collapse measures on matrices whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from nextvec.evaluate.collapse import mean_pairwise_cosine, moment_matching, rankme, std_ratio


def test_rankme_of_rank_one_and_of_an_orthonormal_basis():
    rng = np.random.default_rng(0)
    line = np.outer(rng.normal(size=50), rng.normal(size=8))  # every row on one line
    assert rankme(line) == pytest.approx(1.0, abs=1e-3)
    assert rankme(np.eye(8)) == pytest.approx(8.0, rel=1e-4)  # equal singular values: full rank
    two = np.diag([1.0, 1.0, 0, 0, 0, 0])
    assert rankme(two) == pytest.approx(2.0, rel=1e-4)


def test_mean_pairwise_cosine():
    assert mean_pairwise_cosine(np.tile([[1.0, 2.0]], (5, 1))) == pytest.approx(1.0)
    assert mean_pairwise_cosine(np.eye(4)) == pytest.approx(0.0)
    assert mean_pairwise_cosine(np.array([[1.0, 0], [-2.0, 0]])) == pytest.approx(-1.0)
    x = np.random.default_rng(1).normal(size=(30, 5))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    brute = (u @ u.T)[~np.eye(30, dtype=bool)].mean()
    assert mean_pairwise_cosine(x) == pytest.approx(brute)


def test_std_ratio_leaves_out_constant_dimensions():
    rng = np.random.default_rng(2)
    target = rng.normal(size=(200, 6))
    target[:, 3] = 0.0  # like MiniLM's always-zero dimensions
    pred = 2.0 * target
    pred[:, 3] = rng.normal(size=200)  # anything there must not produce inf or NaN
    r = std_ratio(pred, target)
    assert r["zero_std_dims"] == 1
    assert r["median"] == pytest.approx(2.0) and r["p10"] == pytest.approx(2.0) and r["p90"] == pytest.approx(2.0)
    assert np.isnan(r["per_dim"][3]) and np.isfinite(np.delete(r["per_dim"], 3)).all()


def test_moment_matching_of_a_shifted_copy():
    rng = np.random.default_rng(3)
    target = rng.normal(size=(500, 4)) + 1.0
    mm = moment_matching(target, target + np.array([3.0, 0, 0, 4.0]), 0.5 * target)
    assert mm["y_dec"]["std_ratio_median"] == pytest.approx(1.0)
    assert mm["y_dec"]["mean_distance"] == pytest.approx(5.0)
    assert mm["y_cos"]["std_ratio_median"] == pytest.approx(0.5)
    assert mm["y_cos"]["mean_distance"] == pytest.approx(0.5 * np.linalg.norm(target.mean(0)))
