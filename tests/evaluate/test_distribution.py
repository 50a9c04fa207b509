"""Distribution metrics and sampler baselines on hand-made stores whose right answers are known."""

import numpy as np
import pytest
import torch

from evalkit import AlwaysMean, OracleNext, make_store, one_hot_docs
from nextvec.data.windows import window_targets
from nextvec.evaluate.distribution import evaluate_distributions, frechet_distance
from nextvec.evaluate.rollout import evaluate_rollouts
from nextvec.models.baselines import CopyLastBaseline
from nextvec.models.samplers import KnnSuccessorSampler, residual_covariance

SPLITS = [0] * 6 + [1] * 3 + [2] * 3  # 6 train, 3 val, 3 test documents


@pytest.fixture
def onehot(tmp_path):
    """12 documents of 14 consecutive one-hot vectors (168-d): every chunk is identifiable."""
    return make_store(tmp_path / "s", one_hot_docs([14] * 12), splits=SPLITS)


def test_frechet_distance_is_zero_for_the_same_set_and_the_squared_shift_for_a_moved_one():
    x = np.random.default_rng(0).normal(size=(500, 4))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(x, x + np.array([3.0, 0, 0, 4.0])) == pytest.approx(25.0, abs=1e-6)


def test_the_oracle_is_exact_and_realistic_and_the_mean_is_collapsed(onehot):
    targets = window_targets(onehot, "test")
    res = evaluate_distributions({"oracle": OracleNext(onehot), "mean": AlwaysMean(onehot)}, onehot, targets, 3)
    real, oracle, mean = res["rows"]
    assert oracle["energy_score"] < 1e-4 and oracle["cos_one"] == pytest.approx(1.0)
    assert oracle["frechet"] == pytest.approx(0.0, abs=1e-6) and oracle["verdict"] == "realistic"
    assert oracle["pairwise"] == pytest.approx(real["pairwise"]) and oracle["rankme"] == pytest.approx(real["rankme"])
    assert mean["verdict"] == "collapsed" and mean["pairwise"] == pytest.approx(1.0)
    # a point mass scores its distance to the target: the energy score of the mean is the mean distance
    tv = onehot.get(targets)
    u = onehot.mean / np.linalg.norm(onehot.mean)
    assert mean["energy_score"] == pytest.approx(np.linalg.norm(tv - u, axis=1).mean(), abs=1e-5)


def test_the_knn_sampler_draws_successors_of_train_chunks_only(onehot):
    sampler = KnnSuccessorSampler(onehot, k=4)
    targets = window_targets(onehot, "test")
    ctx = torch.from_numpy(onehot.get(targets - 1)[:, None])
    s = sampler.sample(ctx, torch.ones(len(targets), 1, dtype=torch.bool), 6, torch.Generator().manual_seed(0))
    ids = s.numpy().argmax(-1)  # one-hot: the chunk id each sample is
    assert np.allclose(s.numpy().max(-1), 1.0)
    train = set(onehot.split_chunks("train").tolist())
    assert all(i in train and i - 1 in train for i in ids.ravel())  # a train chunk that follows a train chunk


def test_point_plus_gaussian_fits_the_covariance_of_val_residuals(onehot):
    cov = residual_covariance(CopyLastBaseline(), onehot, 3, "val")
    t = window_targets(onehot, "val")
    expected = np.cov(onehot.get(t) - onehot.get(t - 1), rowvar=False)
    assert np.allclose(cov, expected, atol=1e-6)


def test_rollouts_of_the_oracle_follow_the_document_and_the_mean_repeats(onehot):
    res = evaluate_rollouts(OracleNext(onehot, context_length=3), onehot, "test", steps=6, prompts=10, prefix=3)
    assert res["prompts"] == 3  # every test document is long enough
    for mode in ("point", "sampled"):
        m = res["modes"][mode]
        assert m["repeat_rate"] == 0.0 and m["distinct_per_rollout"] == 6.0
        assert all(s["cos_truth"] == pytest.approx(1.0) for s in m["steps"])
    res = evaluate_rollouts(AlwaysMean(onehot), onehot, "test", steps=6, prompts=10, prefix=3, context_length=3)
    m = res["modes"]["point"]
    assert m["repeat_rate"] == pytest.approx(5 / 6) and m["distinct_per_rollout"] == 1.0
    assert [s["repeat_rate"] for s in m["steps"]] == [0.0] + [1.0] * 5


def test_rollouts_need_long_enough_documents(onehot):
    from nextvec.errors import NextvecError

    with pytest.raises(NextvecError, match="no test document has 20 chunks"):
        evaluate_rollouts(AlwaysMean(onehot), onehot, "test", steps=15, prefix=5, context_length=3)


class MeanPointRealSamples(AlwaysMean):
    """A sampling model whose point output is the train mean and whose samples are the true next vectors."""

    sampler = "oracle"

    def __init__(self, store):
        super().__init__(store)
        self.oracle = OracleNext(store)

    def sample(self, context, mask, n, generator=None, **options):
        return self.oracle.predict(context, mask).y_dec[:, None].expand(-1, n, -1).clone()


def test_diagnose_judges_a_sampler_on_its_samples_and_a_point_model_on_its_point(onehot):
    from nextvec.evaluate.diagnostics import diagnose_run

    sampler = diagnose_run(MeanPointRealSamples(onehot), onehot, "test", context_length=3, n_decode=5)
    point = diagnose_run(AlwaysMean(onehot), onehot, "test", context_length=3, n_decode=5)
    assert sampler["judged_on"] == "samples" and not sampler["collapsed"]
    assert sampler["verdict"].startswith("not collapsed (judged on samples: realistic")
    assert point["judged_on"] == "point" and point["collapsed"] and point["verdict"].startswith("COLLAPSED")
    assert {c["check"]: c["status"] for c in point["checks"]}["samples_realism"] == "fail"
