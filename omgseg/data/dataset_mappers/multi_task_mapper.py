"""Training mapper for a mix of image and video datasets in one run (``"omg_multi_task"``).

``DATASETS.TRAIN`` may list image datasets (COCO panoptic, Cityscapes, ...) and video datasets
(YouTube-VIS, VIPSeg, DAVIS) together. Each record goes to the mapper of its kind (table
:data:`MAPPERS_BY_RECORD_KIND`): an image becomes a pseudo-video, a video gives a clip; both have
``INPUT.NUM_FRAMES`` frames and the same output contract, so one batch may hold both. Records of
a prompt dataset (metadata ``evaluator_type`` "coco_sam", e.g. COCO-SAM, or a record ``task``
"prompt") become single-frame prompt samples (``PromptDatasetMapper``); the model decodes them
in their own group of the batch.
"""
from typing import Callable, Dict

from detectron2.config import configurable
from detectron2.data import MetadataCatalog

from .prompt_mapper import PromptDatasetMapper
from .pseudo_video_mapper import PseudoVideoLSJDatasetMapper
from .video_mapper import VideoClipDatasetMapper
from .video_targets import is_video_record

__all__ = ["MAPPERS_BY_RECORD_KIND", "record_kind", "MultiTaskDatasetMapper"]

# Training mapper by record kind; each is called as ``cls(cfg, is_train=True)``.
MAPPERS_BY_RECORD_KIND: Dict[str, Callable] = {
    "image": PseudoVideoLSJDatasetMapper,
    "video": VideoClipDatasetMapper,
    "prompt": PromptDatasetMapper,
}

# Datasets whose image records are prompt samples, by metadata ``evaluator_type``.
PROMPT_EVALUATOR_TYPES = ("coco_sam",)


def record_kind(record: dict) -> str:
    """``"video"`` for a record listing frames (``file_names``); ``"prompt"`` for an image record
    with ``task`` "prompt" or of a dataset whose ``evaluator_type`` is in
    :data:`PROMPT_EVALUATOR_TYPES`; else ``"image"``."""
    if is_video_record(record):
        return "video"
    if record.get("task") == "prompt":
        return "prompt"
    name = record.get("dataset_name")
    if name and name in MetadataCatalog.list():
        if MetadataCatalog.get(name).get("evaluator_type", None) in PROMPT_EVALUATOR_TYPES:
            return "prompt"
    return "image"


class MultiTaskDatasetMapper:
    """Dispatch every record to the mapper of its :func:`record_kind`."""

    @configurable
    def __init__(self, is_train: bool = True, *, mappers: Dict[str, Callable]):
        """
        Args:
            is_train: kept for Detectron2's mapper signature.
            mappers: record kind -> mapper (a callable record -> training sample).
        """
        self.is_train = is_train
        self.mappers = dict(mappers)

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        return {
            "is_train": is_train,
            "mappers": {kind: m(cfg, is_train=True) for kind, m in MAPPERS_BY_RECORD_KIND.items()},
        }

    def __call__(self, dataset_dict: dict) -> dict:
        kind = record_kind(dataset_dict)
        if kind not in self.mappers:
            raise KeyError(f"No training mapper for {kind} records (dataset "
                           f"'{dataset_dict.get('dataset_name', '')}'); known kinds: "
                           f"{sorted(self.mappers)}")
        return self.mappers[kind](dataset_dict)
