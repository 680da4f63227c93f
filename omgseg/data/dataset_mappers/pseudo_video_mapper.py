"""Training mapper: an image becomes a pseudo-video of ``INPUT.NUM_FRAMES`` frames.

Large-scale jitter, OMG-Seg style: one flip decision and one resize scale for the whole clip,
then an independent random crop per frame, so the frames look like a camera moving over the same
scene and every entity keeps its identity across frames.
"""
import copy
import logging
from typing import Optional, Sequence

import numpy as np
import torch

from detectron2.config import configurable

from .clip_transforms import (
    build_shared_transform,
    frames_to_instances,
    image_to_tensor,
    sample_crop,
    shared_output_size,
    transform_frames,
)
from .targets import load_frame_targets, read_image_checked, record_task, vocabulary_size

__all__ = ["PseudoVideoLSJDatasetMapper"]

logger = logging.getLogger(__name__)


class PseudoVideoLSJDatasetMapper:
    """Map a panoptic / instance / semantic image record to a training clip (ARCHITECTURE.md).

    Output::

        {"file_name", "image_id", "height", "width",   # original image
         "dataset_name", "task",
         "video": uint8 [T, 3, H, W],
         "instances": [Instances(gt_classes, gt_masks bool [M, H, W], gt_ids)] * T}

    With ``is_train=False`` the augmentation is deterministic (no flip, scale 1, top-left crops).
    """

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        num_frames: int,
        crop_size: Sequence[int],
        min_scale: float,
        max_scale: float,
        flip_prob: float,
        image_format: str,
        min_mask_area: int = 0,
        ignore_label: int = 255,
        num_classes: Optional[int] = None,
    ):
        """
        Args:
            num_frames: T, frames per clip.
            crop_size: (H, W) of the crop; also the LSJ resize target.
            min_scale, max_scale: range of the random resize factor (of ``crop_size``).
            flip_prob: probability of a horizontal flip (shared by all frames).
            image_format: Detectron2 image format ("RGB" / "BGR").
            min_mask_area: masks with fewer pixels in a frame are zeroed there.
            ignore_label: label of unlabelled pixels in semantic ground truth.
            num_classes: vocabulary size for validating category ids; None: taken from the
                metadata of the record's ``dataset_name`` (len(stuff_classes) or
                len(thing_classes)), no check when that is unavailable.
        """
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        if len(crop_size) != 2 or min(crop_size) <= 0:
            raise ValueError(f"crop_size must be (H, W) > 0, got {crop_size}")
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
        self.is_train = is_train
        self.num_frames = int(num_frames)
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.flip_prob = float(flip_prob)
        self.image_format = image_format
        self.min_mask_area = int(min_mask_area)
        self.ignore_label = int(ignore_label)
        self.num_classes = num_classes
        logger.info(
            f"[PseudoVideoLSJDatasetMapper] T={self.num_frames}, crop {self.crop_size}, "
            f"scale [{self.min_scale}, {self.max_scale}], flip {self.flip_prob}"
        )

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        return {
            "is_train": is_train,
            "num_frames": cfg.INPUT.NUM_FRAMES,
            "crop_size": tuple(cfg.INPUT.LSJ.CROP_SIZE),
            "min_scale": cfg.INPUT.LSJ.MIN_SCALE,
            "max_scale": cfg.INPUT.LSJ.MAX_SCALE,
            "flip_prob": cfg.INPUT.LSJ.FLIP_PROB,
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
        image_size = image.shape[:2]
        targets = load_frame_targets(
            dataset_dict, image_size, task, self._num_classes(dataset_name), self.ignore_label
        )

        if self.is_train:
            flip = bool(np.random.rand() < self.flip_prob)
            scale = float(np.random.uniform(self.min_scale, self.max_scale))
        else:
            flip, scale = False, 1.0
        shared = build_shared_transform(image_size, self.crop_size, scale, flip)
        resized_size = shared_output_size(shared, image_size)
        crops = [
            sample_crop(resized_size, self.crop_size, random=self.is_train)
            for _ in range(self.num_frames)
        ]
        frames, frame_targets = transform_frames(
            [image] * self.num_frames, [targets] * self.num_frames, shared, crops
        )
        instances = frames_to_instances(frame_targets, self.min_mask_area)

        return {
            "file_name": dataset_dict["file_name"],
            "image_id": dataset_dict.get("image_id", dataset_dict["file_name"]),
            "height": int(dataset_dict["height"]),
            "width": int(dataset_dict["width"]),
            "dataset_name": dataset_name,
            "task": task,
            "video": torch.stack([image_to_tensor(f) for f in frames], dim=0),
            "instances": instances,
        }
