"""Categories of the OMG-Shapes synthetic benchmark (COCO-panoptic style records).

The one table the runtime needs to register OMG-Shapes; the generator (``omgseg.synthetic``)
imports it from here. Things are flat shapes with a class colour; stuff classes are textured
background regions. Names are ordinary English words so that a real CLIP text tower gives them
meaningful embeddings. The contiguous id of a category (semantic PNGs, Detectron2 metadata) is
its index in ``OMG_SHAPES_CATEGORIES``: things 0..7, stuff 8..11.
"""
from typing import Dict, List

__all__ = ["OMG_SHAPES_CATEGORIES"]

# id, name, isthing, color (RGB base colour; instances jitter around it)
_BG = "background"
OMG_SHAPES_CATEGORIES: List[Dict] = [
    {"id": 1, "name": "circle", "isthing": 1, "color": [220, 40, 40], "supercategory": "shape"},
    {"id": 2, "name": "square", "isthing": 1, "color": [40, 170, 60], "supercategory": "shape"},
    {"id": 3, "name": "triangle", "isthing": 1, "color": [40, 70, 220], "supercategory": "shape"},
    {"id": 4, "name": "star", "isthing": 1, "color": [240, 210, 30], "supercategory": "shape"},
    {"id": 5, "name": "hexagon", "isthing": 1, "color": [200, 40, 200], "supercategory": "shape"},
    {"id": 6, "name": "ring", "isthing": 1, "color": [30, 200, 210], "supercategory": "shape"},
    {"id": 7, "name": "cross", "isthing": 1, "color": [245, 130, 20], "supercategory": "shape"},
    {"id": 8, "name": "heart", "isthing": 1, "color": [250, 120, 170], "supercategory": "shape"},
    {"id": 11, "name": "sky", "isthing": 0, "color": [135, 190, 235], "supercategory": _BG},
    {"id": 12, "name": "grass", "isthing": 0, "color": [70, 120, 40], "supercategory": _BG},
    {"id": 13, "name": "wall", "isthing": 0, "color": [150, 80, 60], "supercategory": _BG},
    {"id": 14, "name": "water", "isthing": 0, "color": [30, 60, 120], "supercategory": _BG},
]
