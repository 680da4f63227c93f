"""Registers every dataset at import, under ``$DETECTRON2_DATASETS`` (default ``datasets``).

Names already in the DatasetCatalog are never re-registered. See ``datasets/README.md``.
"""
import os

from .ade20k import complete_ade20k_sem_seg_metadata, register_all_ade20k_panoptic
from .cityscapes import adapt_cityscapes_panoptic_metadata
from .coco_panoptic import register_all_coco_panoptic, register_all_coco_sam
from .davis import register_all_davis
from .omg_shapes import register_all_omg_shapes
from .ov_vocabularies import attach_official_vocabularies
from .vipseg import register_all_vipseg
from .ytvis import register_all_ytvis_2019, register_all_ytvis_2021


def register_all(root: str) -> None:
    register_all_coco_panoptic(root)
    register_all_coco_sam(root)
    register_all_ade20k_panoptic(root)
    complete_ade20k_sem_seg_metadata()
    adapt_cityscapes_panoptic_metadata()
    register_all_vipseg(root)
    register_all_ytvis_2019(root)
    register_all_ytvis_2021(root)
    register_all_davis(root)
    register_all_omg_shapes(root)
    attach_official_vocabularies()  # metadata "ov_vocabulary": the official synonym lists


_root = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
register_all(_root)
