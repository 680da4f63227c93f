"""DAVIS-2017 semi-supervised video object segmentation (and OMG-Shapes' DAVIS-format copy).

Layout: ``<base>/JPEGImages/480p/<video>/00000.jpg``,
``<base>/Annotations/480p/<video>/00000.png`` (palette PNG, value k = object k, 0 = background,
255 = void), ``<base>/ImageSets/2017/{split}.txt``.

Record (one per video)::

    {"video_id", "file_names": [T], "mask_file_names": [T] (None where a frame has no PNG),
     "length": T, "height", "width"}
"""
import logging
import os
from typing import Dict, List

from PIL import Image

from .utils import register_dataset, require_dir, require_file

logger = logging.getLogger(__name__)

__all__ = ["load_davis", "register_davis", "get_davis_metadata", "register_all_davis"]


def load_davis(base: str, split: str, resolution: str = "480p", year: str = "2017") -> List[Dict]:
    list_file = os.path.join(base, "ImageSets", year, f"{split}.txt")
    require_file(list_file, "DAVIS split list")
    image_root = require_dir(os.path.join(base, "JPEGImages", resolution), "DAVIS frame directory")
    mask_root = require_dir(os.path.join(base, "Annotations", resolution),
                            "DAVIS annotation directory")
    with open(list_file) as f:
        videos = [line.strip() for line in f if line.strip()]
    records = []
    for video in videos:
        frame_dir = require_dir(os.path.join(image_root, video), "DAVIS video frame directory")
        frames = sorted(n for n in os.listdir(frame_dir) if n.endswith(".jpg"))
        if not frames:
            raise FileNotFoundError(f"No .jpg frames in {frame_dir!r} (see datasets/README.md)")
        masks = []
        for name in frames:
            mask = os.path.join(mask_root, video, os.path.splitext(name)[0] + ".png")
            masks.append(mask if os.path.isfile(mask) else None)
        if masks[0] is None:
            raise FileNotFoundError(
                f"DAVIS first-frame mask not found: {os.path.join(mask_root, video)!r}"
                " (see datasets/README.md)"
            )
        with Image.open(os.path.join(frame_dir, frames[0])) as im:
            width, height = im.size
        records.append(
            {
                "video_id": video,
                "file_names": [os.path.join(frame_dir, n) for n in frames],
                "mask_file_names": masks,
                "length": len(frames),
                "height": height,
                "width": width,
            }
        )
    logger.info("Loaded %d DAVIS videos from %s", len(records), list_file)
    return records


def get_davis_metadata() -> Dict:
    """Class-agnostic: every object is 'object'."""
    return {
        "thing_classes": ["object"],
        "thing_colors": [[220, 20, 60]],
        "thing_dataset_id_to_contiguous_id": {1: 0},
        "class_agnostic": True,
        "ignore_label": 255,
    }


def register_davis(name: str, base: str, split: str, metadata: Dict = None) -> bool:
    return register_dataset(
        name,
        lambda: load_davis(base, split),
        dict(metadata or get_davis_metadata(), evaluator_type="davis", davis_root=base,
             image_root=os.path.join(base, "JPEGImages", "480p"),
             mask_root=os.path.join(base, "Annotations", "480p"), split=split),
    )


def register_all_davis(root: str, prefix: str = "") -> List[str]:
    """``{prefix}davis_2017_{train,val}`` at ``<root>/DAVIS``."""
    names = []
    for split in ("train", "val"):
        name = f"{prefix}davis_2017_{split}"
        register_davis(name, os.path.join(root, "DAVIS"), split)
        names.append(name)
    return names
