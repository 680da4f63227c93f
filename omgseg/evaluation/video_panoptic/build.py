"""The evaluators of a video panoptic dataset (``evaluator_type="vps"``), chosen by the
``MODEL.OMG.TEST.{PANOPTIC,SEMANTIC}_ON`` switches: the entry for the evaluator table."""
from typing import List

from detectron2.evaluation import DatasetEvaluator

from .vps_evaluator import VideoPanopticEvaluator
from .vss_evaluator import VideoSemSegEvaluator

__all__ = ["video_panoptic_evaluators"]


def video_panoptic_evaluators(cfg, dataset_name: str, output_folder: str
                              ) -> List[DatasetEvaluator]:
    """``VideoPanopticEvaluator`` (VPQ + STQ, task ``vpq``) when ``PANOPTIC_ON`` and
    ``VideoSemSegEvaluator`` (mIoU + VC8 / VC16, task ``vss``) when ``SEMANTIC_ON``."""
    test = cfg.MODEL.OMG.TEST
    out: List[DatasetEvaluator] = []
    if test.PANOPTIC_ON:
        out.append(VideoPanopticEvaluator(dataset_name, output_folder))
    if test.SEMANTIC_ON:
        out.append(VideoSemSegEvaluator(dataset_name, output_folder))
    return out
