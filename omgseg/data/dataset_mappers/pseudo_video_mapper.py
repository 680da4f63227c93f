"""Training mapper: an image becomes a pseudo-video of ``INPUT.NUM_FRAMES`` frames.

The official ``ImageCopy`` + ``TransformBroadcaster`` pipeline as Detectron2 augmentations: one
flip decision and one large-scale-jitter resize for the whole clip, then an independent random
crop per frame, so the frames look like a camera moving over the same scene and every entity
keeps its identity across frames.
"""
import copy
import logging
from typing import List, Optional

import torch

from detectron2.config import configurable
from detectron2.data import transforms as T

from .augmentations import build_lsj_augmentations
from .clip_transforms import augment_clip, frames_to_instances, image_to_tensor
from .image_io import read_image_checked
from .targets import load_frame_targets, record_task, vocabulary_size

__all__ = ["PseudoVideoLSJDatasetMapper"]

logger = logging.getLogger(__name__)


class PseudoVideoLSJDatasetMapper:
    """Map a panoptic / instance / semantic image record to a training clip (ARCHITECTURE.md).

    Output::

        {"file_name", "image_id", "height", "width",   # original image
         "dataset_name", "task",
         "video": uint8 [T, 3, H, W],
         "instances": [Instances(gt_classes, gt_masks bool [M, H, W], gt_ids)] * T}
    """

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        num_frames: int,
        shared_augmentations: List[T.Augmentation],
        frame_augmentations: List[T.Augmentation],
        image_format: str,
        min_mask_area: int = 0,
        ignore_label: int = 255,
        num_classes: Optional[int] = None,
    ):
        """
        Args:
            is_train: kept for Detectron2's mapper signature; the augmentations decide.
            num_frames: T, frames per clip.
            shared_augmentations: drawn once per clip, applied to every frame (flip, resize).
            frame_augmentations: drawn once per frame (the crop).
            image_format: Detectron2 image format ("RGB" / "BGR").
            min_mask_area: masks with fewer pixels in a frame are zeroed there.
            ignore_label: label of unlabelled pixels in semantic ground truth.
            num_classes: vocabulary size for validating category ids; None: taken from the
                metadata of the record's ``dataset_name`` (len(stuff_classes) or
                len(thing_classes)), no check when that is unavailable.
        """
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.is_train = is_train
        self.num_frames = int(num_frames)
        self.shared_augmentations = T.AugmentationList(shared_augmentations)
        self.frame_augmentations = T.AugmentationList(frame_augmentations)
        self.image_format = image_format
        self.min_mask_area = int(min_mask_area)
        self.ignore_label = int(ignore_label)
        self.num_classes = num_classes
        logger.info(
            f"[PseudoVideoLSJDatasetMapper] T={self.num_frames}, shared augmentations "
            f"{self.shared_augmentations}, per frame {self.frame_augmentations}"
        )

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        lsj = cfg.INPUT.LSJ
        shared, per_frame = build_lsj_augmentations(
            lsj.CROP_SIZE, (lsj.MIN_SCALE, lsj.MAX_SCALE), lsj.FLIP_PROB
        )
        return {
            "is_train": is_train,
            "num_frames": cfg.INPUT.NUM_FRAMES,
            "shared_augmentations": shared,
            "frame_augmentations": per_frame,
            "image_format": cfg.INPUT.FORMAT,
            "min_mask_area": cfg.INPUT.MIN_MASK_AREA,
        }

    def _num_classes(self, dataset_name: str) -> Optional[int]:
        if self.num_classes is not None:
            return int(self.num_classes)
        return vocabulary_size(dataset_name)

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict = copy.copy(dataset_dict)  # shallow: the record is not modified
        dataset_name = dataset_dict.get("dataset_name") or ""
        task = record_task(dataset_dict)

        image = read_image_checked(dataset_dict, self.image_format)
        targets = load_frame_targets(
            dataset_dict, image.shape[:2], task, self._num_classes(dataset_name),
            self.ignore_label,
        )
        frames, frame_targets = augment_clip(
            [image] * self.num_frames, [targets] * self.num_frames,
            self.shared_augmentations, self.frame_augmentations, independent_frames=True,
        )
        return {
            "file_name": dataset_dict["file_name"],
            "image_id": dataset_dict.get("image_id", dataset_dict["file_name"]),
            "height": int(dataset_dict["height"]),
            "width": int(dataset_dict["width"]),
            "dataset_name": dataset_name,
            "task": task,
            "video": torch.stack([image_to_tensor(f) for f in frames], dim=0),
            "instances": frames_to_instances(frame_targets, self.min_mask_area),
        }
