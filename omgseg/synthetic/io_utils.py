"""File-format helpers shared by the writers: deterministic JPEG/PNG/JSON output, panoptic id
colour coding, COCO RLE with area and tight box (pycocotools), and the DAVIS palette."""
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

__all__ = ["JPEG_QUALITY", "write_jpeg", "write_png", "write_palette_png", "write_json",
           "rle_record", "segment_record", "davis_palette"]

PathLike = Union[str, os.PathLike]
JPEG_QUALITY = 95


def _parent(path: PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)


def write_jpeg(path: PathLike, rgb: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    """Write an RGB uint8 image as JPEG (fixed quality and settings: byte-deterministic)."""
    _parent(path)
    Image.fromarray(rgb, mode="RGB").save(path, format="JPEG", quality=quality, subsampling=0)


def write_png(path: PathLike, array: np.ndarray) -> None:
    """Write a uint8 [H, W] (grey) or [H, W, 3] (RGB) array as PNG."""
    _parent(path)
    Image.fromarray(np.ascontiguousarray(array.astype(np.uint8))).save(path, format="PNG")


def write_palette_png(path: PathLike, index: np.ndarray, palette: List[int]) -> None:
    """Write a uint8 index map [H, W] as a palette ("P" mode) PNG."""
    _parent(path)
    img = Image.fromarray(index.astype(np.uint8), mode="P")
    img.putpalette(palette)
    img.save(path, format="PNG")


def write_json(path: PathLike, obj: Any) -> None:
    """Write JSON with a stable layout (no timestamps, fixed key order)."""
    _parent(path)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))


def _rle(mask: np.ndarray) -> Dict[str, Any]:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def _area_bbox(rle: Dict[str, Any]) -> Tuple[int, List[int]]:
    """Pixel count and tight [x, y, w, h] box (integers) of an RLE, by pycocotools."""
    return int(mask_utils.area(rle)), [int(v) for v in mask_utils.toBbox(rle)]


def rle_record(mask: np.ndarray) -> Dict[str, Any]:
    """``segmentation`` (COCO compressed RLE, ``counts`` as str), ``area`` and ``bbox`` of a
    boolean mask."""
    rle = _rle(mask)
    area, bbox = _area_bbox(rle)
    segmentation = {"size": [int(rle["size"][0]), int(rle["size"][1])],
                    "counts": rle["counts"].decode("ascii")}
    return {"segmentation": segmentation, "area": area, "bbox": bbox}


def segment_record(mask: np.ndarray, segment_id: int, category_id: int) -> Dict[str, Any]:
    """COCO-panoptic ``segments_info`` entry of one segment."""
    area, bbox = _area_bbox(_rle(mask))
    return {"id": int(segment_id), "category_id": int(category_id), "iscrowd": 0,
            "area": area, "bbox": bbox}


def davis_palette() -> List[int]:
    """The 256-colour palette of DAVIS / PASCAL VOC annotations (flat [r, g, b] * 256)."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.extend([r, g, b])
    return palette
