"""Predictors users call on their own images and videos (Detectron2 ``DefaultPredictor`` idiom)."""
from .predictor import OMGSegPredictor, prepare_image
from .prompt_inputs import build_prompts
from .prompt_predictor import PromptPredictor, PromptResult, ReferringResult, RegionReference
from .video_predictor import ResizedFrames, VideoPredictor

__all__ = [
    "OMGSegPredictor",
    "PromptPredictor",
    "PromptResult",
    "ReferringResult",
    "RegionReference",
    "ResizedFrames",
    "VideoPredictor",
    "build_prompts",
    "prepare_image",
]
