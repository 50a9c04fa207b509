"""Distribution metrics and sampler baselines on hand-made stores whose right answers are known."""

import numpy as np
import pytest
import torch

from evalkit import AlwaysMean, OracleNext, make_store, one_hot_docs, random_docs
from nextvec.data.windows import window_targets
from nextvec.evaluate.distribution import evaluate_distributions, frechet_distance
from nextvec.options import DiagnoseOptions
from nextvec.evaluate.rollout import KnnWalk, evaluate_rollouts, format_rollout, rollout_prompts, sample_rollouts
from nextvec.options import RolloutOptions
from nextvec.models.baselines import CopyLastBaseline
from nextvec.models.samplers import KnnSuccessorSampler, residual_covariance
from nextvec.session import Session

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


def test_oracle_continuations_match_the_real_one_at_every_horizon(onehot):
    res = evaluate_rollouts({"oracle": (OracleNext(onehot), 3, "sample")}, onehot, RolloutOptions(horizon=6, prompts=10,
                            prefix=3, knn_walk=False))
    assert res["prompts"] == 3  # every test document is long enough
    o = res["predictors"]["oracle"]
    assert all(e < 1e-4 for e in o["energy"]) and o["repeat_rate"] == 0.0
    assert o["retention"] == pytest.approx(res["real"]["retention"], abs=1e-6)
    assert o["cos_prev"] == pytest.approx(res["real"]["cos_prev"], abs=1e-6)
    # one-hot chunks: the true continuation is orthogonal to the prompt, and so is every step before it
    assert res["real"]["retention"] == pytest.approx([0.0] * 6, abs=1e-6)


def test_a_point_rollout_of_the_mean_repeats_from_its_second_step(onehot):
    res = evaluate_rollouts({"mean": (AlwaysMean(onehot), 3, "point")}, onehot, RolloutOptions(horizon=6, prompts=10, prefix=3))
    m = res["predictors"]["mean"]
    assert m["repeats"] == [0.0] + [1.0] * 5 and m["repeat_rate"] == pytest.approx(5 / 6)
    # as read: the same vector every step still repeats (cosine 1 to the step before), whatever the decoder picks
    assert m["repeats_read"] == [0.0] + [1.0] * 5
    walk = res["predictors"]["knn_walk"]
    assert res["reference"] == "knn_walk" and len(walk["energy"]) == 6
    assert "| real continuation |" in format_rollout(res) and "| mean |" in format_rollout(res)


def test_the_knn_walks_of_a_prompt_draw_distinct_successors_at_every_step(tmp_path):
    store = make_store(tmp_path / "r", random_docs(n_docs=80, min_len=12, max_len=16, dim=16),
                       splits=[0] * 60 + [1] * 10 + [2] * 10)
    k, steps = 4, 5
    prompts = torch.from_numpy(np.stack([store.get(slice(s, s + 3)) for s in rollout_prompts(store, "test", 3, steps, 5, 0)]))
    walk = KnnWalk(KnnSuccessorSampler(store, k=k), k, torch.Generator().manual_seed(0))
    g = sample_rollouts(prompts, steps, k, 1, walk.draw).numpy()  # (B, k, steps, D)
    assert g.shape == (len(prompts), k, steps, 16)
    train_succ = {store.get(int(i) + 1).tobytes() for i in store.split_chunks("train")}
    for b in range(len(g)):
        for h in range(steps):
            rows = {g[b, j, h].tobytes() for j in range(k)}
            assert len(rows) == k and rows <= train_succ  # k distinct train successors


def test_sample_rollouts_draws_k_from_the_prompt_then_one_per_rollout():
    calls = []

    def draw(ctx, mask, n, own):
        calls.append((tuple(ctx.shape), n, own))
        return ctx[:, -1:].expand(-1, n, -1) + 1.0

    # `own`: how many of the context's last vectors are earlier draws (at most the context's length)
    g = sample_rollouts(torch.zeros(2, 4, 3), steps=4, k=5, context_length=2, draw=draw)
    assert calls == [((2, 2, 3), 5, 0), ((10, 2, 3), 1, 1), ((10, 2, 3), 1, 2), ((10, 2, 3), 1, 2)]
    assert torch.equal(g[:, :, :, 0], torch.tensor([1.0, 2.0, 3.0, 4.0]).expand(2, 5, 4))


def test_rollouts_need_long_enough_documents(onehot):
    from nextvec.errors import NextvecError

    with pytest.raises(NextvecError, match="no test document has 20 chunks"):
        evaluate_rollouts({"mean": (AlwaysMean(onehot), 3, "point")}, onehot, RolloutOptions(horizon=15, prefix=5))


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

    sampler = diagnose_run(Session.assemble(MeanPointRealSamples(onehot), {"context_length": 3}, onehot), DiagnoseOptions(n_decode=5))
    point = diagnose_run(Session.assemble(AlwaysMean(onehot), {"context_length": 3}, onehot), DiagnoseOptions(n_decode=5))
    assert sampler["judged_on"] == "samples" and not sampler["collapsed"]
    assert sampler["verdict"].startswith("not collapsed (judged on samples: realistic")
    assert point["judged_on"] == "point" and point["collapsed"] and point["verdict"].startswith("COLLAPSED")
    assert {c["check"]: c["status"] for c in point["checks"]}["samples_realism"] == "fail"


def test_as_read_decoding_skips_what_was_said_like_generate():
    from nextvec.evaluate.rollout import as_read

    cands = [[["a", "b"], ["a", "c"], ["b", "a"], ["c", "b"]]]  # one rollout, 4 steps, 2 candidates each
    assert as_read(cands, [["p"]]) == [["a", "c", "b", "c"]]  # step 4: both said -> its first candidate
    assert as_read(cands, [["a"]]) == [["b", "c", "b", "c"]]  # the prompt counts as said

