"""LVM config: unknown keys are rejected, overrides are typed, the shipped configs validate."""

import tomllib
from pathlib import Path

import pytest

from nextvec.config import LVMConfig, load_config
from nextvec.errors import NextvecError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_unknown_keys_are_rejected():
    for bad in (["train.learning_rate=1e-3"], ["loss.msee=1"], ["model.hidden=3"], ["optimizer.lr=1"]):
        with pytest.raises(NextvecError, match="Extra inputs are not permitted"):
            load_config(LVMConfig, None, bad)


def test_overrides_are_typed_and_validated():
    cfg = load_config(LVMConfig, None, ["train.lr=3e-4", "model.context_length=32", "loss.infonce=0.5"])
    assert cfg.train.lr == 3e-4 and cfg.model.context_length == 32 and cfg.loss.infonce == 0.5
    with pytest.raises(NextvecError, match="model.name"):
        load_config(LVMConfig, None, ["model.name=rnn"])
    with pytest.raises(NextvecError, match="train.batch_size"):
        load_config(LVMConfig, None, ["train.batch_size=0"])


def test_shipped_configs_validate_and_default_matches_the_schema():
    for path in CONFIGS.glob("*.toml"):
        load_config(LVMConfig, path)
    default = tomllib.loads((CONFIGS / "default.toml").read_text())
    assert LVMConfig.model_validate(default) == LVMConfig()


def test_resolved_fills_family_defaults():
    auto = LVMConfig().model.model_copy(update={"residual_prior": "auto"})
    assert auto.model_copy(update={"name": "amn"}).resolved(384).residual_prior == "mean"
    gru = auto.model_copy(update={"name": "gru"}).resolved(384)
    assert gru.residual_prior == "none" and gru.dim == 384
    assert LVMConfig().model.resolved(384).residual_prior == "recency"  # the default recipe keeps its prior
