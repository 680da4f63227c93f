"""Clip structure that Detectron2 lacks: identity-aligned targets of the frames of a clip.

A clip is a list of frames; each frame is an image (HWC uint8) plus its :class:`FrameTargets`.
:func:`augment_clip` runs Detectron2 augmentations in two parts (see ``augmentations.py``): the
**shared** ones (flip + scale jitter) drawn once per clip and applied to every frame, then the
**per-frame** ones (the crop): independent for a pseudo-video made from one image, repeated for a
real video. :func:`frames_to_instances` turns the augmented targets into one
:class:`~detectron2.structures.Instances` per frame with identities aligned across frames (same
``M`` and order everywhere, all-zero masks where an entity is absent).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from detectron2.data import transforms as T
from detectron2.structures import Instances

__all__ = ["FrameTargets", "augment_clip", "frames_to_instances", "image_to_tensor"]


@dataclass
class FrameTargets:
    """Ground-truth entities of one frame, in one of two compact forms.

    * label-map form (panoptic / semantic): ``label_map`` [H, W] integer array; entity ``k`` covers
      ``label_map == values[k]``. Entities never overlap.
    * mask-stack form (instance annotations, which may overlap): ``masks`` [H, W, M] uint8.

    ``ids`` (int64 [M]) are identities (shared across frames of a clip), ``classes`` (int64 [M])
    contiguous class ids in the dataset vocabulary.
    """

    ids: np.ndarray
    classes: np.ndarray
    label_map: Optional[np.ndarray] = None
    values: Optional[np.ndarray] = None
    masks: Optional[np.ndarray] = None

    def __post_init__(self):
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        self.classes = np.asarray(self.classes, dtype=np.int64).reshape(-1)
        if len(self.ids) != len(self.classes):
            raise ValueError(f"FrameTargets: {len(self.ids)} ids but {len(self.classes)} classes")
        if (self.label_map is None) == (self.masks is None):
            raise ValueError("FrameTargets needs exactly one of label_map / masks")
        if self.label_map is not None:
            if self.values is None or len(self.values) != len(self.ids):
                raise ValueError("FrameTargets: label_map form needs one value per entity")
            self.values = np.asarray(self.values).reshape(-1)
        elif self.masks.ndim != 3 or self.masks.shape[2] != len(self.ids):
            raise ValueError(
                f"FrameTargets: masks must be [H, W, M={len(self.ids)}], got {self.masks.shape}"
            )

    @property
    def image_size(self) -> Tuple[int, int]:
        arr = self.label_map if self.label_map is not None else self.masks
        return int(arr.shape[0]), int(arr.shape[1])

    def apply(self, tfm: T.Transform) -> "FrameTargets":
        """Apply a geometric transform (nearest interpolation for the targets)."""
        if self.label_map is not None:
            return FrameTargets(
                self.ids, self.classes, label_map=_apply_label_map(tfm, self.label_map),
                values=self.values,
            )
        h, w = self.image_size
        if self.masks.shape[2] == 0:
            # Transform a dummy channel to learn the output size.
            out = tfm.apply_segmentation(np.zeros((h, w), dtype=np.uint8))
            masks = np.zeros(out.shape[:2] + (0,), dtype=np.uint8)
        else:
            channels = [
                tfm.apply_segmentation(np.ascontiguousarray(self.masks[:, :, i]))
                for i in range(self.masks.shape[2])
            ]
            masks = np.ascontiguousarray(np.stack(channels, axis=2))
        return FrameTargets(self.ids, self.classes, masks=masks)

    def to_masks(self) -> np.ndarray:
        """Boolean masks [M, H, W]."""
        if self.label_map is not None:
            if len(self.values) == 0:
                return np.zeros((0,) + self.label_map.shape, dtype=bool)
            return self.label_map[None] == self.values[:, None, None]
        return np.ascontiguousarray(self.masks.transpose(2, 0, 1)).astype(bool)


def _apply_label_map(tfm: T.Transform, label_map: np.ndarray) -> np.ndarray:
    """Nearest-neighbour transform of an integer label map of any integer dtype."""
    label_map = np.ascontiguousarray(label_map)
    if label_map.dtype == np.uint8:
        return np.ascontiguousarray(tfm.apply_segmentation(label_map))
    # Detectron2 resizes non-uint8 arrays with torch, which has no integer nearest resize:
    # go through float32 (exact for labels below 2**24).
    if label_map.size and int(np.abs(label_map).max()) >= 2**24:
        raise ValueError("label map values must be below 2**24")
    out = tfm.apply_segmentation(label_map.astype(np.float32))
    return np.ascontiguousarray(np.rint(out).astype(np.int64))


def augment_clip(
    images: Sequence[np.ndarray],
    targets: Sequence[Optional[FrameTargets]],
    shared: T.AugmentationList,
    per_frame: T.AugmentationList,
    independent_frames: bool = True,
) -> Tuple[List[np.ndarray], List[Optional[FrameTargets]]]:
    """Augment the frames of a clip: ``shared`` sampled once, ``per_frame`` once per frame.

    Args:
        images: T frames, HWC uint8. A pseudo-video passes the same array T times: it goes
            through the shared transforms once.
        targets: T :class:`FrameTargets` (or None) at the size of their frame.
        shared: e.g. flip + scale jitter, drawn on frame 0 and applied to every frame.
        per_frame: e.g. a crop, drawn for every frame (``independent_frames``, pseudo-videos) or
            drawn on frame 0 and repeated (real videos keep one camera).

    Returns:
        the augmented frames and targets.
    """
    if len(images) != len(targets) or not images:
        raise ValueError(f"augment_clip: {len(images)} images and {len(targets)} targets")
    first = T.AugInput(np.ascontiguousarray(images[0]))
    shared_tf = shared(first)
    cache = {}
    frame_tf = None
    out_images, out_targets = [], []
    for image, tgt in zip(images, targets):
        key = (id(image), id(tgt))
        if key not in cache:
            img_t = first.image if image is images[0] else shared_tf.apply_image(image)
            tgt_t = tgt.apply(shared_tf) if tgt is not None else None
            cache[key] = (np.ascontiguousarray(img_t), tgt_t)
        img_t, tgt_t = cache[key]
        if independent_frames or frame_tf is None:
            frame_input = T.AugInput(img_t)
            frame_tf = per_frame(frame_input)
            out_images.append(np.ascontiguousarray(frame_input.image))
        else:
            out_images.append(np.ascontiguousarray(frame_tf.apply_image(img_t)))
        out_targets.append(tgt_t.apply(frame_tf) if tgt_t is not None else None)
    return out_images, out_targets


def frames_to_instances(
    frame_targets: Sequence[FrameTargets], min_mask_area: int = 0
) -> List[Instances]:
    """Per-frame Instances with identities aligned across frames.

    Masks with fewer than ``min_mask_area`` pixels in a frame are zeroed there; entities whose
    mask is empty in every frame are dropped. Every frame gets the same ``M`` entities in the same
    order (first appearance order); ``gt_masks`` is all-zero where an entity is absent.
    """
    per_frame = []
    order: List[int] = []
    id_to_class = {}
    for tgt in frame_targets:
        masks = tgt.to_masks()
        if masks.shape[0]:
            area = masks.reshape(masks.shape[0], -1).sum(1)
            keep = (area > 0) & (area >= min_mask_area)
        else:
            keep = np.zeros((0,), dtype=bool)
        present = {}
        for k in np.nonzero(keep)[0]:
            eid = int(tgt.ids[k])
            if eid in present:  # duplicate identity in one frame: merge its masks
                present[eid] = present[eid] | masks[k]
                continue
            present[eid] = masks[k]
            if eid not in id_to_class:
                id_to_class[eid] = int(tgt.classes[k])
                order.append(eid)
        per_frame.append((tgt.image_size, present))

    ids = torch.tensor(order, dtype=torch.int64)
    classes = torch.tensor([id_to_class[i] for i in order], dtype=torch.int64)
    out = []
    for (h, w), present in per_frame:
        masks = torch.zeros((len(order), h, w), dtype=torch.bool)
        for j, eid in enumerate(order):
            if eid in present:
                masks[j] = torch.from_numpy(present[eid])
        inst = Instances((h, w))
        inst.gt_classes = classes.clone()
        inst.gt_masks = masks
        inst.gt_ids = ids.clone()
        out.append(inst)
    return out


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """HWC uint8 array -> CHW uint8 tensor."""
    return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
