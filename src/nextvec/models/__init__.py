"""Latent Vector Models: every predictor maps a left-padded context (B, T, D) to Prediction(y_dec, y_cos)."""

from nextvec.models.base import Prediction, Predictor
from nextvec.models.registry import MODELS, build_model

__all__ = ["MODELS", "Prediction", "Predictor", "build_model"]
