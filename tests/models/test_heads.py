"""Sampling heads: the energy score by hand, the flow objective's ends, a bimodal toy that a point head
averages and a sampling head reproduces, seeded sampling, and sample() on every predictor."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nextvec.config import ModelConfig
from nextvec.models.base import sample_from
from nextvec.models.baselines import build_baselines
from nextvec.models.heads import fair_energy_score, flow_interpolate
from nextvec.models.registry import build_model


def test_energy_score_with_one_sample_is_its_distance():
    x, y = torch.tensor([[[3.0, 4.0]]]), torch.tensor([[0.0, 0.0]])
    assert fair_energy_score(x, y).item() == pytest.approx(5.0, abs=1e-5)


def test_energy_score_by_hand_and_a_point_mass_on_the_target_scores_zero():
    a, b, y = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0]), torch.tensor([0.0, 1.0])
    es = fair_energy_score(torch.stack([a, b])[None], y[None]).item()
    # (|a - y| + |b - y|) / 2 - 0.5 * |a - b| = sqrt(2) - 1
    assert es == pytest.approx(np.sqrt(2) - 1, abs=1e-5)
    assert fair_energy_score(y.expand(1, 8, 2).clone(), y[None]).item() < 1e-5
    # a spread of samples around the target beats the same spread shifted away from it
    s = torch.randn(1, 8, 2, generator=torch.Generator().manual_seed(0)) * 0.1
    assert fair_energy_score(y + s, y[None]) < fair_energy_score(y + 1 + s, y[None])


def test_flow_interpolation_is_noise_at_t0_and_data_at_t1():
    x0, x1 = torch.randn(4, 6), torch.randn(4, 6)
    xt, v = flow_interpolate(x0, x1, torch.zeros(4))
    assert torch.equal(xt, x0) and torch.equal(v, x1 - x0)
    xt, _ = flow_interpolate(x0, x1, torch.ones(4))
    assert torch.allclose(xt, x1)
    xt, _ = flow_interpolate(x0, x1, torch.full((4,), 0.25))
    assert torch.allclose(xt, 0.75 * x0 + 0.25 * x1)


def _bimodal_model(head: str, steps: int = 400):
    """One context vector (e2); the next vector is e0 or e1 with equal chance. Train cosine + the head."""
    torch.manual_seed(0)
    D = 8
    model = build_model(ModelConfig(name="gru", head=head, hidden_dim=32, num_layers=1, dropout=0.0,
                                    context_length=1, head_width=64, head_depth=2, residual_prior="none",
                                    separate_cos_head=False), D)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    ctx, mask = F.one_hot(torch.full((64, 1), 2), D).float(), torch.ones(64, 1, dtype=torch.bool)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        target = F.one_hot(torch.randint(2, (64,), generator=gen), D).float()
        pred = model(ctx, mask, target)
        loss = (1 - F.cosine_similarity(pred.y_cos, target)).mean() + sum(pred.head_losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), ctx[:1], mask[:1]


@pytest.mark.parametrize("head", ["energy", "flow"])
def test_a_sampling_head_draws_both_modes_where_the_point_lands_between_them(head):
    model, ctx, mask = _bimodal_model(head)
    with torch.no_grad():
        point = model.predict(ctx, mask).y_cos[0]
        samples = F.normalize(model.sample(ctx, mask, 400, torch.Generator().manual_seed(0))[0], dim=-1)
    assert point[0] > 0.5 and point[1] > 0.5 and max(point[0], point[1]) < 0.9  # between the modes
    near0, near1 = (samples[:, 0] > 0.9).float().mean(), (samples[:, 1] > 0.9).float().mean()
    assert near0 > 0.2 and near1 > 0.2 and near0 + near1 > 0.7, (near0, near1)


@pytest.mark.parametrize("head", ["energy", "flow"])
def test_same_seed_same_samples(head):
    model = build_model(ModelConfig(name="amn", head=head, hidden_dim=32, head_width=32), 16).eval()
    ctx, mask = torch.randn(3, 5, 16), torch.ones(3, 5, dtype=torch.bool)
    with torch.no_grad():
        a = model.sample(ctx, mask, 4, torch.Generator().manual_seed(7))
        b = model.sample(ctx, mask, 4, torch.Generator().manual_seed(7))
        c = model.sample(ctx, mask, 4, torch.Generator().manual_seed(8))
    assert a.shape == (3, 4, 16) and torch.equal(a, b) and not torch.equal(a, c)
    # samples live where y_dec lives: the same norm as the point prediction
    norms = model.predict(ctx, mask).y_dec.norm(dim=-1)
    assert torch.allclose(a.norm(dim=-1), norms[:, None].expand(-1, 4), atol=1e-4)


def test_temperature_zero_collapses_the_energy_head_and_guidance_changes_the_flow():
    ctx, mask = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    energy = build_model(ModelConfig(name="gru", head="energy", hidden_dim=32, head_width=32), 16).eval()
    with torch.no_grad():
        x = energy.sample(ctx, mask, 5, torch.Generator().manual_seed(0), temperature=0.0)
    assert torch.allclose(x, x[:, :1].expand_as(x))  # no noise: one point, five times
    flow = build_model(ModelConfig(name="gru", head="flow", hidden_dim=32, head_width=32), 16).eval()
    for p in flow.sampler.parameters():  # untrained, adaLN ignores the conditioning: make it matter
        torch.nn.init.normal_(p, std=0.2)
    with torch.no_grad():
        g1 = flow.sample(ctx, mask, 3, torch.Generator().manual_seed(0), guidance=1.0)
        g3 = flow.sample(ctx, mask, 3, torch.Generator().manual_seed(0), guidance=3.0)
    assert not torch.allclose(g1, g3)


def test_every_predictor_samples_and_a_point_predictor_repeats_its_point(tiny_store):
    ctx = torch.from_numpy(np.stack([tiny_store.get(slice(0, 3))] * 2))
    mask = torch.ones(2, 3, dtype=torch.bool)
    point = build_model(ModelConfig(name="lstm", hidden_dim=16, head="point"), tiny_store.dim)
    for p in [point, *build_baselines(tiny_store).values()]:
        s = sample_from(p, ctx, mask, 5)
        y = p.predict(ctx, mask).y_dec
        assert s.shape == (2, 5, tiny_store.dim) and torch.allclose(s, y[:, None].expand_as(s)), p.name


def test_prompt_guidance_weighs_the_prompt_only_in_a_continuation():
    """With draws of its own in the context (own > 0), the energy head samples around
    unit(y_own + g (y - y_own)), y_own read from the model's own draws alone: further from y_own than the
    unguided point. A one-step draw from real context (own = 0), g = 1, or a context of draws only is
    unchanged; an unknown option is refused."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="amn", head="energy", hidden_dim=32, head_width=32, context_length=6), 16)
    model.eval()
    ctx, mask = F.normalize(torch.randn(3, 6, 16), dim=-1), torch.ones(3, 6, dtype=torch.bool)

    def point(own=0, g=None, m=mask):  # temperature 0: the energy head's draw is its point
        y = model.sample(ctx, m, 1, torch.Generator().manual_seed(0), own=own, temperature=0.0, prompt_guidance=g)
        return F.normalize(y[:, 0], dim=-1)

    mine = mask.clone()
    mine[:, :-2] = False
    y, y_own = point(), point(m=mine)
    guided = point(own=2, g=2.0)
    torch.testing.assert_close(guided, F.normalize(y_own + 2.0 * (y - y_own), dim=-1), atol=1e-5, rtol=0)
    assert ((guided * y_own).sum(-1) < (y * y_own).sum(-1)).all()
    assert model.config.prompt_guidance == 2.0  # the default: on
    torch.testing.assert_close(point(own=2), guided)
    for same in (point(own=0, g=2.0), point(own=2, g=1.0), point(own=6, g=2.0)):
        torch.testing.assert_close(same, y)
    with pytest.raises(TypeError, match="unknown sampling options"):
        model.sample(ctx, mask, 1, temprature=0.5)
