"""OMG-Shapes: a deterministic synthetic benchmark for every OMG-Seg task (images + videos).

``generate_omg_shapes(root, seed=..., ...)`` writes COCO-panoptic / COCO-instances / semantic
annotations for images and YouTube-VIS / VIPSeg-style / DAVIS annotations for videos; see
``paths.py`` for the layout and ``datasets/prepare_synthetic.py`` for the command line.

A data-preparation tool, not part of the runtime: ``import omgseg`` does not load it (the
registration of the OMG-Shapes datasets needs only the category table, which lives in
``omgseg.data.datasets.omg_shapes_categories``).
"""
from .categories import (CATEGORY_BY_ID, CONTIGUOUS_ID, LABEL_DIVISOR, OMG_SHAPES_CATEGORIES,
                         STUFF_CATEGORIES, THING_CATEGORIES)
from .generate import (GENERATOR_VERSION, OmgShapesConfig, generate_omg_shapes,
                       prepare_omg_shapes, read_meta)
from .paths import OmgShapesPaths, default_omg_shapes_root

__all__ = [
    "OMG_SHAPES_CATEGORIES", "THING_CATEGORIES", "STUFF_CATEGORIES", "CATEGORY_BY_ID",
    "CONTIGUOUS_ID", "LABEL_DIVISOR", "GENERATOR_VERSION", "OmgShapesConfig",
    "generate_omg_shapes", "prepare_omg_shapes", "read_meta", "OmgShapesPaths",
    "default_omg_shapes_root",
]
