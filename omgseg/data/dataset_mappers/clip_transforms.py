"""Per-frame transform code shared by the image (pseudo-video) and video mappers.

A clip is a list of frames; each frame is an image (HWC uint8) plus its :class:`FrameTargets`.
Augmentation is split in two:

* a **shared** transform (horizontal flip + large-scale-jitter resize) built once per clip with
  :func:`build_shared_transform` and applied to every frame;
* one **crop** per frame (:func:`sample_crop`): independent crops for a pseudo-video made from one
  image, or the same crop repeated for a real video.

:func:`transform_frames` applies both and :func:`frames_to_instances` turns the cropped targets
into one :class:`~detectron2.structures.Instances` per frame with identities aligned across
frames (same ``M`` and order everywhere, all-zero masks where an entity is absent).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from detectron2.data import transforms as T
from detectron2.structures import Instances

__all__ = [
    "FrameTargets",
    "build_shared_transform",
    "sample_crop",
    "shared_output_size",
    "transform_frames",
    "frames_to_instances",
    "image_to_tensor",
]


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


def build_shared_transform(
    image_size: Tuple[int, int],
    target_size: Tuple[int, int],
    scale: float,
    flip: bool,
) -> T.TransformList:
    """Flip (optional) + large-scale-jitter resize, identical for every frame of a clip.

    The resize has :class:`detectron2.data.transforms.ResizeScale` semantics: the image is scaled,
    keeping its aspect ratio, so that it fits inside ``target_size * scale``.
    """
    h, w = int(image_size[0]), int(image_size[1])
    tfms: List[T.Transform] = []
    if flip:
        tfms.append(T.HFlipTransform(w))
    # ResizeScale with min == max is the deterministic resize for this scale.
    resize_aug = T.ResizeScale(
        min_scale=scale, max_scale=scale, target_height=int(target_size[0]),
        target_width=int(target_size[1]),
    )
    tfms.append(resize_aug.get_transform(np.empty((h, w, 0), dtype=np.uint8)))
    return T.TransformList(tfms)


def shared_output_size(shared: T.TransformList, image_size: Tuple[int, int]) -> Tuple[int, int]:
    """(H, W) after the flip + resize of :func:`build_shared_transform`."""
    h, w = int(image_size[0]), int(image_size[1])
    for tfm in shared.transforms:
        if isinstance(tfm, T.ResizeTransform):
            h, w = int(tfm.new_h), int(tfm.new_w)
    return h, w


def sample_crop(
    image_size: Tuple[int, int],
    crop_size: Tuple[int, int],
    random: bool = True,
    rng: Optional[np.random.RandomState] = None,
) -> T.CropTransform:
    """A crop of at most ``crop_size`` (H, W) at a random position (no padding).

    Like :class:`detectron2.data.transforms.FixedSizeCrop` with ``pad=False`` but the vertical and
    horizontal offsets are drawn independently. ``random=False``: top-left crop.
    """
    h, w = int(image_size[0]), int(image_size[1])
    ch, cw = min(int(crop_size[0]), h), min(int(crop_size[1]), w)
    if random:
        rng = rng if rng is not None else np.random
        y0 = int(rng.randint(0, h - ch + 1))
        x0 = int(rng.randint(0, w - cw + 1))
    else:
        y0 = x0 = 0
    return T.CropTransform(x0, y0, cw, ch, w, h)


def transform_frames(
    images: Sequence[np.ndarray],
    targets: Sequence[Optional[FrameTargets]],
    shared: T.Transform,
    crops: Sequence[T.Transform],
) -> Tuple[List[np.ndarray], List[Optional[FrameTargets]]]:
    """Apply ``shared`` then ``crops[i]`` to frame ``i`` (image and targets).

    Frames given as the same object (a pseudo-video built from one image) go through the shared
    transform once.
    """
    if not (len(images) == len(targets) == len(crops)):
        raise ValueError(
            f"transform_frames: {len(images)} images, {len(targets)} targets, {len(crops)} crops"
        )
    cache = {}
    out_images, out_targets = [], []
    for image, tgt, crop in zip(images, targets, crops):
        key = (id(image), id(tgt))
        if key not in cache:
            img_t = np.ascontiguousarray(shared.apply_image(np.ascontiguousarray(image)))
            tgt_t = tgt.apply(shared) if tgt is not None else None
            cache[key] = (img_t, tgt_t)
        img_t, tgt_t = cache[key]
        out_images.append(np.ascontiguousarray(crop.apply_image(img_t)))
        out_targets.append(tgt_t.apply(crop) if tgt_t is not None else None)
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
