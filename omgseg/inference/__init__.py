"""Predictors users call on their own images (Detectron2 ``DefaultPredictor`` idiom)."""
from .predictor import OMGSegPredictor, prepare_image

__all__ = ["OMGSegPredictor", "prepare_image"]
