"""Latent Vector Models: every predictor maps a left-padded context (B, T, D) to Prediction(y_dec, y_cos)."""

from nextvec.models.amn import AMNModel
from nextvec.models.base import Prediction, Predictor
from nextvec.models.common import LVM
from nextvec.models.recurrent import GRUModel, LSTMModel
from nextvec.models.registry import MODELS, build_model
from nextvec.models.transformer import TransformerModel

__all__ = ["AMNModel", "GRUModel", "LSTMModel", "LVM", "MODELS", "Prediction", "Predictor", "TransformerModel",
           "build_model"]
