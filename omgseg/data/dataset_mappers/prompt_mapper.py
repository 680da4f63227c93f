"""Mappers of prompt (COCO-SAM mode) samples: training prompts from augmented ground truth, and
the deterministic evaluation prompts of the interactive mIoU.

Training (:class:`PromptDatasetMapper`, official ``coco_panoptic_lsj_sam_720p`` pipeline): flip
p = 0.5, large-scale-jitter resize with ratio U(0.1, 2.0) (COCO-SAM's range, wider than the
0.8-2.0 of the other datasets), crop 1280 x 736, masks under 32 px dropped
(``FilterAnnotationsHB(min_gt_mask_area=32)``); then :func:`~omgseg.data.prompts.
sample_training_prompts` draws the prompts FROM THE AUGMENTED MASKS, in the pixel coordinates of
the augmented (unpadded, top-left aligned in the padded batch) image. A prompt sample is a single
frame (T = 1), as officially (COCO-SAM samples are not pseudo-videos); the model decodes it in
its own group of the batch.
"""
import copy
import logging
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from detectron2.config import configurable
from detectron2.data import transforms as T
from detectron2.structures import Instances

from ..prompts import PROMPT_KINDS, evaluation_prompts, sample_training_prompts
from .augmentations import build_lsj_augmentations
from .clip_transforms import augment_clip, frames_to_instances, image_to_tensor
from .image_io import read_image_checked
from .targets import check_panoptic_ground_truth, load_frame_targets, record_task
from .test_mapper import OMGTestDatasetMapper

__all__ = ["PromptDatasetMapper", "PromptTestDatasetMapper", "prompt_kind_weights"]

logger = logging.getLogger(__name__)


def prompt_kind_weights(weights: Sequence[float]) -> Dict[str, float]:
    """``INPUT.PROMPT.KIND_WEIGHTS`` (one weight per kind of ``PROMPT_KINDS``) as a dict."""
    weights = [float(w) for w in weights]
    if len(weights) != len(PROMPT_KINDS):
        raise ValueError(f"INPUT.PROMPT.KIND_WEIGHTS needs {len(PROMPT_KINDS)} weights, one per "
                         f"kind {PROMPT_KINDS}; got {weights}")
    return dict(zip(PROMPT_KINDS, weights))


class PromptDatasetMapper:
    """Map a panoptic / instance image record to a training prompt sample.

    Output (the clip contract of ARCHITECTURE.md with T = 1, plus the prompts)::

        {"file_name", "image_id", "height", "width", "dataset_name",
         "task": "prompt",
         "video": uint8 [1, 3, H, W],
         "instances": [Instances(gt_masks bool [P, H, W], gt_classes int64 [P] = -1,
                                 gt_ids int64 [P])],   # target i answers prompt i
         "prompts": Prompts (P prompts, pixel coordinates of the H x W image)}
    """

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        augmentations: List[T.Augmentation],
        image_format: str,
        num_prompts: int,
        min_mask_area: int,
        kind_weights: Dict[str, float],
        ignore_label: int = 255,
    ):
        """
        Args:
            is_train: kept for Detectron2's mapper signature.
            augmentations: flip, scale jitter and crop, applied in order.
            image_format: Detectron2 image format ("RGB" / "BGR").
            num_prompts: prompts per image (official 20).
            min_mask_area: entities with fewer pixels after augmentation are dropped (official
                32).
            kind_weights: sampling weight of each prompt kind.
            ignore_label: label of unlabelled pixels in semantic ground truth.
        """
        if num_prompts < 1:
            raise ValueError(f"num_prompts must be >= 1, got {num_prompts}")
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.num_prompts = int(num_prompts)
        self.min_mask_area = int(min_mask_area)
        self.kind_weights = dict(kind_weights)
        self.ignore_label = int(ignore_label)
        logger.info(f"[PromptDatasetMapper] {self.num_prompts} prompts per image, kinds "
                    f"{self.kind_weights}, augmentations {self.augmentations}")

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        lsj, prompt = cfg.INPUT.LSJ, cfg.INPUT.PROMPT
        shared, per_frame = build_lsj_augmentations(
            lsj.CROP_SIZE, (prompt.MIN_SCALE, prompt.MAX_SCALE), lsj.FLIP_PROB
        )
        return {
            "is_train": is_train,
            "augmentations": shared + per_frame,
            "image_format": cfg.INPUT.FORMAT,
            "num_prompts": prompt.NUM_PROMPTS,
            "min_mask_area": prompt.MIN_MASK_AREA,
            "kind_weights": prompt_kind_weights(prompt.KIND_WEIGHTS),
        }

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict = copy.copy(dataset_dict)
        image = read_image_checked(dataset_dict, self.image_format)
        targets = load_frame_targets(dataset_dict, image.shape[:2], record_task(dataset_dict),
                                     None, self.ignore_label)
        (frame,), frame_targets = augment_clip(
            [image], [targets], self.augmentations, T.AugmentationList([]),
        )
        entities = frames_to_instances(frame_targets, self.min_mask_area)[0]
        masks = entities.gt_masks.numpy()
        rng = np.random.default_rng(int(np.random.randint(2**31)))
        prompts, index = sample_training_prompts(masks, self.num_prompts, self.kind_weights, rng)
        index_t = torch.from_numpy(index)
        inst = Instances(frame.shape[:2])
        inst.gt_masks = entities.gt_masks[index_t]
        inst.gt_classes = torch.full((len(index),), -1, dtype=torch.int64)
        inst.gt_ids = entities.gt_ids[index_t]
        return {
            "file_name": dataset_dict["file_name"],
            "image_id": dataset_dict.get("image_id", dataset_dict["file_name"]),
            "height": int(dataset_dict["height"]),
            "width": int(dataset_dict["width"]),
            "dataset_name": dataset_dict.get("dataset_name") or "",
            "task": "prompt",
            "video": image_to_tensor(frame)[None],
            "instances": [inst],
            "prompts": prompts,
        }


class PromptTestDatasetMapper(OMGTestDatasetMapper):
    """Test mapper of a prompt evaluation split (``evaluator_type`` "coco_sam"): the test image
    of :class:`OMGTestDatasetMapper` plus one deterministic prompt per non-crowd segment and
    evaluation mode, computed on the segment's mask resized (nearest) to the test input, as the
    official protocol does (``get_center_coords(rescale_shape=img_shape)``).

    Added fields: ``"prompts"`` (pixel coordinates of ``image``), ``"prompt_segment_ids"``
    int64 [P] (the panoptic segment id each prompt targets) and ``"prompt_modes"`` [P]
    ("point" / "box" / "scribble").
    """

    @configurable
    def __init__(self, is_train: bool = False, *, modes: Sequence[str] = ("point", "box",
                                                                          "scribble"), **kwargs):
        super().__init__(is_train, **kwargs)
        self.modes = tuple(modes)

    @classmethod
    def from_config(cls, cfg, is_train: bool = False, dataset_name: str = ""):
        ret = OMGTestDatasetMapper.from_config(cfg, is_train, dataset_name)
        ret["modes"] = tuple(cfg.INPUT.PROMPT.EVAL_MODES)
        return ret

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict = copy.copy(dataset_dict)
        image = read_image_checked(dataset_dict, self.image_format)
        check_panoptic_ground_truth(dataset_dict, image.shape[:2])
        aug_input = T.AugInput(image)
        transforms = self.augmentations(aug_input)
        targets = load_frame_targets(dataset_dict, image.shape[:2], "panoptic")
        masks = _resize_masks(targets.to_masks(), transforms, aug_input.image.shape[:2])
        prompts, index, modes = evaluation_prompts(masks, self.modes)
        dataset_dict["image"] = image_to_tensor(aug_input.image)
        dataset_dict["dataset_name"] = dataset_dict.get("dataset_name") or self.dataset_name
        dataset_dict["prompts"] = prompts
        dataset_dict["prompt_segment_ids"] = torch.as_tensor(targets.ids[index], dtype=torch.int64)
        dataset_dict["prompt_modes"] = modes
        dataset_dict.pop("annotations", None)
        dataset_dict.pop("sem_seg_file_name", None)
        return dataset_dict


def _resize_masks(masks: np.ndarray, transforms: Optional[T.TransformList], size) -> np.ndarray:
    """bool [M, h, w]: ``masks`` [M, H, W] through ``transforms`` (nearest)."""
    out = np.zeros((len(masks),) + tuple(size), dtype=bool)
    for i, mask in enumerate(masks):
        out[i] = transforms.apply_segmentation(mask.astype(np.uint8)).astype(bool)
    return out
