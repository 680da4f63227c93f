"""Predictors users call on their own images and videos (Detectron2 ``DefaultPredictor`` idiom)."""
from .predictor import OMGSegPredictor, prepare_image
from .video_predictor import ResizedFrames, VideoPredictor

__all__ = ["OMGSegPredictor", "ResizedFrames", "VideoPredictor", "prepare_image"]
