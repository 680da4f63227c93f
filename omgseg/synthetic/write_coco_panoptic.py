"""COCO-panoptic writer: ``panoptic_{split}/*.png`` (RGB-coded ids), ``panoptic_{split}.json``."""
from typing import Dict, List

from panopticapi.utils import id2rgb

from .categories import OMG_SHAPES_CATEGORIES
from .compositing import RenderedFrame
from .io_utils import segment_record, write_json, write_png
from .paths import OmgShapesPaths

__all__ = ["CocoPanopticWriter"]


class CocoPanopticWriter:
    """Collects images of one split; ``finalize`` writes the JSON."""

    def __init__(self, paths: OmgShapesPaths, split: str) -> None:
        self.paths, self.split = paths, split
        self.images: List[Dict] = []
        self.annotations: List[Dict] = []

    def add(self, image_id: int, stem: str, frame: RenderedFrame) -> List[Dict]:
        """Write the id PNG of ``frame``; returns its ``segments_info``."""
        height, width = frame.panoptic.shape
        write_png(self.paths.panoptic_dir(self.split) / f"{stem}.png", id2rgb(frame.panoptic))
        segments = [segment_record(m, s, c) for s, c, m in frame.segment_masks()]
        self.images.append({"id": image_id, "file_name": f"{stem}.jpg", "height": height,
                            "width": width})
        self.annotations.append({"image_id": image_id, "file_name": f"{stem}.png",
                                 "segments_info": segments})
        return segments

    def finalize(self) -> None:
        write_json(self.paths.panoptic_json(self.split), {
            "info": {"description": f"OMG-Shapes {self.split} (panoptic)"},
            "licenses": [],
            "images": self.images,
            "annotations": self.annotations,
            "categories": [dict(c) for c in OMG_SHAPES_CATEGORIES],
        })
