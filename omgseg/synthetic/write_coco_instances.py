"""COCO-instances writer: ``instances_{split}.json`` with the visible thing masks as RLE."""
from typing import Dict, List

from .categories import CATEGORY_BY_ID, THING_CATEGORIES
from .compositing import RenderedFrame
from .io_utils import rle_record, write_json
from .paths import OmgShapesPaths

__all__ = ["CocoInstancesWriter"]


class CocoInstancesWriter:
    """One annotation per thing segment (ascending segment id); ``finalize`` writes the JSON."""

    def __init__(self, paths: OmgShapesPaths, split: str) -> None:
        self.paths, self.split = paths, split
        self.images: List[Dict] = []
        self.annotations: List[Dict] = []

    def add(self, image_id: int, stem: str, frame: RenderedFrame) -> int:
        """Record the things of ``frame``; returns how many."""
        height, width = frame.panoptic.shape
        self.images.append({"id": image_id, "file_name": f"{stem}.jpg", "height": height,
                            "width": width})
        n = 0
        for _, cat, mask in frame.segment_masks():
            if not CATEGORY_BY_ID[cat]["isthing"]:
                continue
            rec = rle_record(mask)
            self.annotations.append({
                "id": len(self.annotations) + 1, "image_id": image_id, "category_id": cat,
                "segmentation": rec["segmentation"], "area": rec["area"], "bbox": rec["bbox"],
                "iscrowd": 0,
            })
            n += 1
        return n

    def finalize(self) -> None:
        write_json(self.paths.instances_json(self.split), {
            "info": {"description": f"OMG-Shapes {self.split} (instances)"},
            "licenses": [],
            "images": self.images,
            "annotations": self.annotations,
            "categories": [dict(c) for c in THING_CATEGORIES],
        })
