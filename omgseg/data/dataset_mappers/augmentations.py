"""Detectron2 augmentations of the official OMG-Seg training pipeline (large-scale jitter).

The official pipeline (mmdet / mmcv) is, per clip::

    RandomFlip(prob=0.5)                                       # shared by the frames
    RandomResize(scale=(1280, 736), ratio_range=(0.8, 2.0), keep_ratio=True)   # shared
    RandomCrop(crop_size=(1280, 736), crop_type="absolute")    # (W, H), one per frame

:func:`build_lsj_augmentations` returns the same as Detectron2 augmentations: the shared part
(:class:`T.RandomFlip` + :class:`ScaleJitterResize`) and the per-frame part
(:class:`T.RandomCrop` ``"absolute"``, which like mmdet's crop never pads and shrinks to the
image when the image is smaller than the crop).
"""
from typing import List, Sequence, Tuple

import numpy as np

from detectron2.data import transforms as T

__all__ = ["ScaleJitterResize", "build_lsj_augmentations"]


class ScaleJitterResize(T.Augmentation):
    """mmdet ``RandomResize(scale, ratio_range, keep_ratio=True)`` as a Detectron2 augmentation.

    Draw ``r ~ U(ratio_range)``; the target is ``(int(W_t * r), int(H_t * r))`` (mmdet
    truncates). With ``long = max(target)``, ``short = min(target)``, the scale factor is mmcv
    ``rescale_size``'s ``s = min(long / max(h, w), short / min(h, w))``: the image is fitted with
    its LONG edge to the long target edge whatever its orientation (a portrait image may become
    taller than the target height). New size ``(int(h * s + 0.5), int(w * s + 0.5))``, at least
    1 pixel per side (mmcv would give 0 for a 1-pixel-thin image).
    """

    def __init__(self, target_size: Sequence[int], ratio_range: Sequence[float]):
        """
        Args:
            target_size: (H, W) at ratio 1 (official: 736, 1280).
            ratio_range: (min, max) of the uniform ratio r (official: 0.8, 2.0).
        """
        super().__init__()
        if len(target_size) != 2 or min(target_size) <= 0:
            raise ValueError(f"target_size must be (H, W) > 0, got {tuple(target_size)}")
        if len(ratio_range) != 2 or not 0 < ratio_range[0] <= ratio_range[1]:
            raise ValueError(f"ratio_range must be 0 < min <= max, got {tuple(ratio_range)}")
        self.target_size = (int(target_size[0]), int(target_size[1]))
        self.ratio_range = (float(ratio_range[0]), float(ratio_range[1]))

    def output_size(self, image_size: Tuple[int, int], ratio: float) -> Tuple[int, int]:
        """(H, W) of an ``image_size`` (H, W) image resized at ``ratio``."""
        h, w = int(image_size[0]), int(image_size[1])
        target = (int(self.target_size[1] * ratio), int(self.target_size[0] * ratio))
        scale = min(max(target) / max(h, w), min(target) / min(h, w))
        return max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))

    def get_transform(self, image: np.ndarray) -> T.Transform:
        h, w = image.shape[:2]
        ratio = self._rand_range(*self.ratio_range)
        new_h, new_w = self.output_size((h, w), ratio)
        return T.ResizeTransform(h, w, new_h, new_w)


def build_lsj_augmentations(
    crop_size: Sequence[int], ratio_range: Sequence[float], flip_prob: float
) -> Tuple[List[T.Augmentation], List[T.Augmentation]]:
    """(shared, per_frame) augmentations of the official large-scale jitter.

    ``crop_size`` (H, W) is both the resize target at ratio 1 and the crop, as officially.
    """
    shared: List[T.Augmentation] = []
    if flip_prob > 0:
        shared.append(T.RandomFlip(prob=flip_prob, horizontal=True, vertical=False))
    shared.append(ScaleJitterResize(crop_size, ratio_range))
    per_frame: List[T.Augmentation] = [
        T.RandomCrop("absolute", (int(crop_size[0]), int(crop_size[1])))
    ]
    return shared, per_frame
