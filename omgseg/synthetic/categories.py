"""The generator's views of the OMG-Shapes category table.

The table itself lives on the runtime side (``omgseg.data.datasets.omg_shapes_categories``),
which registers the datasets without loading this generator.
"""
from typing import Dict, List

from ..data.datasets.omg_shapes_categories import OMG_SHAPES_CATEGORIES

__all__ = [
    "OMG_SHAPES_CATEGORIES",
    "THING_CATEGORIES",
    "STUFF_CATEGORIES",
    "CATEGORY_BY_ID",
    "CONTIGUOUS_ID",
    "THING_IDS",
    "STUFF_IDS",
    "LABEL_DIVISOR",
]

THING_CATEGORIES = [c for c in OMG_SHAPES_CATEGORIES if c["isthing"]]
STUFF_CATEGORIES = [c for c in OMG_SHAPES_CATEGORIES if not c["isthing"]]
CATEGORY_BY_ID: Dict[int, Dict] = {c["id"]: c for c in OMG_SHAPES_CATEGORIES}
CONTIGUOUS_ID: Dict[int, int] = {c["id"]: i for i, c in enumerate(OMG_SHAPES_CATEGORIES)}
THING_IDS: List[int] = [c["id"] for c in THING_CATEGORIES]
STUFF_IDS: List[int] = [c["id"] for c in STUFF_CATEGORIES]
# Panoptic segment ids written by the generator are category_id * LABEL_DIVISOR + k
# (k = 0 for a stuff segment, k >= 1 for a thing instance / track). Readers must not rely on it:
# the category of a segment is always given by its segments_info record.
LABEL_DIVISOR = 1000
