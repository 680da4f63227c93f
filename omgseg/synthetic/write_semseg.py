"""Semantic writer: ``panoptic_semseg_{split}/*.png``, uint8 contiguous ids (255 = unlabelled).

The contiguous id of a category is its index in ``OMG_SHAPES_CATEGORIES`` (things 0..7, stuff
8..11), as in Detectron2's ``prepare_panoptic_fpn`` output for COCO.
"""
import numpy as np

from .categories import CONTIGUOUS_ID
from .compositing import RenderedFrame
from .io_utils import write_png
from .paths import OmgShapesPaths

__all__ = ["SemSegWriter", "semantic_map", "IGNORE_LABEL"]

IGNORE_LABEL = 255


def semantic_map(frame: RenderedFrame) -> np.ndarray:
    """uint8 [H, W] contiguous category id per pixel of ``frame``."""
    sem = np.full(frame.panoptic.shape, IGNORE_LABEL, dtype=np.uint8)
    for _, cat, mask in frame.segment_masks():
        sem[mask] = CONTIGUOUS_ID[cat]
    return sem


class SemSegWriter:
    """Writes one semantic PNG per image of a split."""

    def __init__(self, paths: OmgShapesPaths, split: str) -> None:
        self.paths, self.split = paths, split

    def add(self, stem: str, frame: RenderedFrame) -> None:
        write_png(self.paths.semseg_dir(self.split) / f"{stem}.png", semantic_map(frame))
