"""LVM families: shapes, unit y_cos, left padding respected, residual priors, heads, registry."""

import pytest
import torch

from nextvec.config import ModelConfig
from nextvec.errors import NextvecError
from nextvec.models import MODELS, Prediction, Predictor, build_model
from nextvec.models.common import ResidualPrior, masked_mean
from nextvec.models.recurrent import left_to_right_padded, pack_left_padded, last_step
from nextvec.models.transformer import causal_padding_mask

FAMILIES = sorted(MODELS)
D, T = 8, 5


def small(name, **kw):
    """A tiny model with the family defaults ("auto" prior, shared head) unless `kw` says otherwise."""
    torch.manual_seed(0)
    cfg = {"name": name, "hidden_dim": 16, "num_layers": 2, "num_heads": 2, "context_length": T,
           "residual_prior": "auto", "separate_cos_head": False, **kw}
    return build_model(cfg, D).eval()


def batch(B=4):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, D, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, :3] = False  # 2 real vectors
    mask[1, :4] = False  # 1 real vector
    return x, mask


@pytest.mark.parametrize("name", FAMILIES)
def test_shapes_unit_ycos_and_protocol(name):
    m = small(name)
    x, mask = batch()
    p = m.predict(x, mask)
    assert isinstance(p, Prediction) and isinstance(m, Predictor) and m.name == name
    assert p.y_dec.shape == (4, D) and p.y_cos.shape == (4, D)
    torch.testing.assert_close(p.y_cos.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(p.y_cos, torch.nn.functional.normalize(p.y_dec, dim=-1))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("prior", ["none", "recency"])
def test_padding_is_ignored(name, prior):
    """A row with L real vectors left-padded to T predicts exactly what the L vectors alone predict,
    whatever values sit at the padded positions."""
    m = small(name, residual_prior=prior)
    if prior == "recency":  # make the prior and the head non-trivial
        with torch.no_grad():
            m.prior.logits.copy_(torch.arange(T, dtype=torch.float))
            for p in m.head[-1].parameters():
                p.normal_()
    x, mask = batch()
    full = m(x, mask).y_dec
    x_noise = x.clone()
    x_noise[~mask] = 1e3
    torch.testing.assert_close(m(x_noise, mask).y_dec, full)
    alone = m(x[:1, 3:], mask[:1, 3:]).y_dec  # the 2 real vectors of row 0, no padding
    torch.testing.assert_close(alone[0], full[0], atol=1e-5, rtol=1e-5)
    one = m(x[1:2, 4:], mask[1:2, 4:]).y_dec
    torch.testing.assert_close(one[0], full[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("prior", ["mean", "last", "recency"])
def test_residual_prior_starts_at_the_prior(name, prior):
    m = small(name, residual_prior=prior)
    x, mask = batch()
    y = m(x, mask).y_dec
    expected = {"mean": masked_mean(x, mask), "last": x[:, -1], "recency": masked_mean(x, mask)}[prior]
    torch.testing.assert_close(y, expected)


def test_amn_defaults_to_the_mean_prior_and_others_to_none():
    assert small("amn").config.residual_prior == "mean"
    assert small("gru").config.residual_prior == "none"
    assert small("gru").prior is None


def test_recency_prior_weights_by_softmax_over_real_positions():
    prior = ResidualPrior("recency", T)
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, torch.log(torch.tensor(3.0))]))
    x = torch.zeros(1, T, 2)
    x[0, 3] = torch.tensor([1.0, 0.0])
    x[0, 4] = torch.tensor([0.0, 1.0])
    mask = torch.tensor([[False, False, False, True, True]])
    # weights over the two real positions: 1/(1+3) and 3/(1+3)
    torch.testing.assert_close(prior(x, mask), torch.tensor([[0.25, 0.75]]))


def test_separate_cos_head_gives_a_different_direction():
    m = small("gru", separate_cos_head=True)
    x, mask = batch()
    p = m(x, mask)
    assert not torch.allclose(p.y_cos, torch.nn.functional.normalize(p.y_dec, dim=-1))
    torch.testing.assert_close(p.y_cos.norm(dim=-1), torch.ones(4))


def test_projection_head_is_linear_gelu_layernorm_linear():
    m = small("lstm")
    kinds = [type(layer).__name__ for layer in m.head]
    assert kinds == ["Linear", "GELU", "LayerNorm", "Linear"]


def test_build_model_rejects_bad_configs():
    with pytest.raises(NextvecError, match="hidden_size|unknown|Extra"):
        build_model({"name": "gru", "hidden_size": 3}, D)
    with pytest.raises(NextvecError):
        build_model({"name": "mamba"}, D)
    with pytest.raises(NextvecError, match="dim"):
        build_model(ModelConfig(name="gru"))


def test_context_longer_than_configured_is_refused():
    m = small("transformer")
    x = torch.randn(1, T + 1, D)
    with pytest.raises(ValueError, match="context_length"):
        m(x, torch.ones(1, T + 1, dtype=torch.bool))


def test_left_to_right_padded_and_last_step():
    x = torch.arange(2 * 4, dtype=torch.float).view(2, 4, 1)  # rows [0 1 2 3], [4 5 6 7]
    lengths = torch.tensor([2, 4])
    assert left_to_right_padded(x, lengths)[:, :, 0].tolist() == [[2, 3, 0, 1], [4, 5, 6, 7]]
    mask = torch.tensor([[False, False, True, True], [True, True, True, True]])
    assert last_step(pack_left_padded(x, mask))[:, 0].tolist() == [3.0, 7.0]


def test_causal_padding_mask():
    mask = torch.tensor([[False, True, True]])
    allowed = causal_padding_mask(mask)[0, 0]
    assert allowed.tolist() == [[True, False, False],  # padded query: only itself (no empty softmax row)
                                [False, True, False],  # first real step: itself
                                [False, True, True]]  # last: the real steps up to it


# The recurrent bodies' parameter names as the separate gru.py / lstm.py wrote them: checkpoints saved
# before the two families shared RecurrentLVM hold exactly these keys (num_layers=2).
OLD_BODY_KEYS = {
    "gru": ["inp.weight", "inp.bias", "norms.0.weight", "norms.0.bias", "norms.1.weight", "norms.1.bias",
            *[f"rnns.{i}.{p}_l0" for i in (0, 1) for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")],
            "out_norm.weight", "out_norm.bias"],
    "lstm": ["inp.weight", "inp.bias",
             *[f"rnns.0.{p}_l{i}" for i in (0, 1) for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")],
             "out_norm.weight", "out_norm.bias"],
}


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_recurrent_checkpoints_from_before_the_fold_still_load(name):
    m = small(name)
    body = {k[len("body."):] for k in m.state_dict() if k.startswith("body.")}
    assert body == set(OLD_BODY_KEYS[name])
    old = {k: torch.full_like(v, 0.25) for k, v in m.state_dict().items()}  # an "old" checkpoint's tensors
    fresh = small(name)
    fresh.load_state_dict(old)  # strict: no missing or unexpected key
    assert all(torch.equal(v, old[k]) for k, v in fresh.state_dict().items())


def test_gru_blocks_are_residual_and_lstm_is_one_stacked_call():
    gru, lstm = small("gru"), small("lstm")
    assert [type(r) for r in gru.body.rnns] == [torch.nn.GRU, torch.nn.GRU] and gru.body.residual_blocks
    assert len(lstm.body.rnns) == 1 and lstm.body.rnns[0].num_layers == 2 and not lstm.body.residual_blocks


def test_the_config_schema_and_the_registry_name_the_same_families():
    from typing import get_args

    assert set(get_args(ModelConfig.model_fields["name"].annotation)) == set(MODELS)
