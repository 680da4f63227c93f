"""Video panoptic / semantic metrics as the official tools define them, and their evaluators.

* ``vpq.py``: VPQ (VIPSeg ``eval_vpq_vspw.py``): :func:`compute_vpq` over in-memory videos;
* ``stq.py``: STQ (VIPSeg ``eval_stq_vspw.py`` + deeplab2 numpy STQ): :func:`compute_stq`;
* ``vss.py``: mIoU (Detectron2 ``SemSegEvaluator``) + VC8 / VC16 (VSPW ``VC_perclip.py``):
  :func:`compute_vss`;
* ``official_layout.py``: VPQ / STQ of files in the official layout
  (:func:`compute_vpq_from_files`, :func:`compute_stq_from_files`);
* ``vps_evaluator.py`` / ``vss_evaluator.py``: the ``DatasetEvaluator`` s (tasks ``vpq``, ``vss``);
  ``build.py``: :func:`video_panoptic_evaluators` for the evaluator table;
* ``frames.py``: the frame formats and the model output the evaluators consume.
"""
from .build import video_panoptic_evaluators
from .official_layout import compute_stq_from_files, compute_vpq_from_files
from .stq import compute_stq
from .vpq import VPQ_WINDOWS, compute_vpq
from .vps_evaluator import VideoPanopticEvaluator
from .vss import VC_WINDOWS, compute_vss
from .vss_evaluator import VideoSemSegEvaluator

__all__ = [
    "VPQ_WINDOWS",
    "VC_WINDOWS",
    "compute_vpq",
    "compute_stq",
    "compute_vss",
    "compute_vpq_from_files",
    "compute_stq_from_files",
    "VideoPanopticEvaluator",
    "VideoSemSegEvaluator",
    "video_panoptic_evaluators",
]
