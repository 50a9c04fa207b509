"""Model families by name, and `build_model(config, dim)` that rebuilds any of them from its config."""

from __future__ import annotations

from nextvec.config import ModelConfig
from nextvec.errors import NextvecError
from nextvec.models.amn import AMNModel
from nextvec.models.common import LVM
from nextvec.models.recurrent import GRUModel, LSTMModel
from nextvec.models.transformer import TransformerModel

MODELS: dict[str, type[LVM]] = {
    "gru": GRUModel,
    "lstm": LSTMModel,
    "transformer": TransformerModel,
    "amn": AMNModel,
}


def build_model(config: ModelConfig | dict, dim: int | None = None) -> LVM:
    """Build an LVM from a ModelConfig (or its dict, e.g. from a checkpoint) for vectors of `dim`."""
    if isinstance(config, dict):
        try:
            config = ModelConfig.model_validate(config)
        except Exception as e:  # pydantic ValidationError: name the bad key
            raise NextvecError(f"invalid model config: {e}") from e
    config = config.resolved(dim)
    if config.dim <= 0:
        raise NextvecError("build_model needs the vector dimension (dim=...)")
    return MODELS[config.name](config)
