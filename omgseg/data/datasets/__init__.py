"""Dataset registration (real datasets, the real COCO sample, the synthetic OMG-Shapes benchmark).

Importing this package registers every dataset in Detectron2's catalogs; see datasets/README.md.
"""
from . import builtin  # noqa: F401  (registers at import)
from .builtin import register_all
from .coco_panoptic import (
    get_coco_panoptic_metadata,
    load_panoptic_json,
    load_sam_json,
    register_all_coco_panoptic,
    register_all_coco_sam,
    register_coco_panoptic_sample,
)
from .ade20k import register_all_ade20k_panoptic
from .davis import load_davis, register_all_davis
from .omg_shapes import register_all_omg_shapes
from .vipseg import load_video_panoptic_json, register_all_vipseg
from .ytvis import load_ytvis_json, register_all_ytvis_2019, register_all_ytvis_2021

__all__ = [
    "register_all",
    "get_coco_panoptic_metadata",
    "load_panoptic_json",
    "load_sam_json",
    "load_video_panoptic_json",
    "load_ytvis_json",
    "load_davis",
    "register_all_coco_panoptic",
    "register_all_coco_sam",
    "register_coco_panoptic_sample",
    "register_all_ade20k_panoptic",
    "register_all_vipseg",
    "register_all_ytvis_2019",
    "register_all_ytvis_2021",
    "register_all_davis",
    "register_all_omg_shapes",
]
