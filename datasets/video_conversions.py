"""VIPSeg preparation, used by ``prepare_vipseg.py`` beside it (a data-preparation module, not
part of the installed package; see ``panoptic_conversions.py``).

Raw VIPSeg (as downloaded): ``VIPSeg/imgs/<video>/<frame>.jpg`` and ``VIPSeg/panomasks/<video>/
<frame>.png`` where a mask value v means: 0 = void; 1 <= v < 125 = class v - 1 (one segment per
class); v >= 125 = instance v % 100 of class v // 100 - 1. Split lists ``VIPSeg/{train,val}.txt``.

Steps (as the official VIPSeg scripts define the 720P release):

1. resize every frame to height 720 (width ``int(720 * w / h)``; bilinear for frames, nearest
   for masks) into ``VIPSeg_720P/{images,panomasks}``;
2. write COCO-panoptic-style PNGs to ``VIPSeg_720P/panomasksRGB/<video>/<frame>.png`` and the
   split jsons ``VIPSeg_720P/panoptic_gt_VIPSeg_{split}.json``. The segment id of a mask value is
   the value itself, so one entity keeps its id through the video.
"""
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from omgseg.data.datasets.utils import atomic_save_png, atomic_write_json, require_dir, require_file

from panoptic_conversions import encode_panoptic_ids, segment_area_bbox  # sibling module

__all__ = [
    "vipseg_value_to_category",
    "vipseg_mask_to_segments",
    "resize_vipseg_frame",
    "resize_vipseg_to_720p",
    "read_video_list",
    "convert_vipseg_video",
    "convert_vipseg_panoptic",
]

VIPSEG_NUM_CLASSES = 124


def vipseg_value_to_category(value: int) -> Tuple[int, bool]:
    """(dataset category id 0..123, has-instance) of a raw VIPSeg mask value (> 0)."""
    value = int(value)
    if value <= 0:
        raise ValueError("mask value 0 is void")
    cat = value - 1 if value < 125 else value // 100 - 1
    if not 0 <= cat < VIPSEG_NUM_CLASSES:
        raise ValueError(f"VIPSeg mask value {value} gives category {cat} outside 0..123")
    return cat, value >= 125


def vipseg_mask_to_segments(mask: np.ndarray) -> Tuple[np.ndarray, List[Dict]]:
    """Segment ids (int64 [H, W], = mask value, 0 void) and segments_info of one raw frame."""
    ids = np.asarray(mask).astype(np.int64)
    segments = []
    for value in np.unique(ids):
        if value == 0:
            continue
        cat, _ = vipseg_value_to_category(value)
        area, bbox = segment_area_bbox(ids == value)
        segments.append({"id": int(value), "category_id": cat, "iscrowd": 0, "area": area,
                         "bbox": bbox})
    return ids, segments


def resize_vipseg_frame(image_path: str, mask_path: str, out_image: str, out_mask: str,
                        height: int = 720) -> None:
    img = Image.open(image_path).convert("RGB")
    w, h = img.size
    size = (int(height * w / h), height)
    mask = Image.open(mask_path)
    if mask.size != img.size:
        raise ValueError(f"{mask_path}: size {mask.size} differs from its frame {img.size}")
    os.makedirs(os.path.dirname(out_image), exist_ok=True)
    os.makedirs(os.path.dirname(out_mask), exist_ok=True)
    img.resize(size, Image.BILINEAR).save(out_image, quality=95)
    mask.resize(size, Image.NEAREST).save(out_mask)


def resize_vipseg_to_720p(root: str, out_root: str, height: int = 720,
                          progress: bool = True) -> int:
    """``<root>/{imgs,panomasks}`` -> ``<out_root>/{images,panomasks}`` (frame height
    ``height``). Frames without a mask (the test split) are skipped. Returns the number of
    frames written."""
    img_root = require_dir(os.path.join(root, "imgs"), "VIPSeg raw frame directory")
    mask_root = require_dir(os.path.join(root, "panomasks"), "VIPSeg raw mask directory")
    jobs = []
    for video in sorted(os.listdir(img_root)):
        if video.startswith("."):
            continue
        for name in sorted(os.listdir(os.path.join(img_root, video))):
            stem = os.path.splitext(name)[0]
            mask = os.path.join(mask_root, video, stem + ".png")
            if name.startswith(".") or not os.path.isfile(mask):
                continue
            jobs.append((os.path.join(img_root, video, name), mask,
                         os.path.join(out_root, "images", video, stem + ".jpg"),
                         os.path.join(out_root, "panomasks", video, stem + ".png")))
    for job in tqdm(jobs, desc="VIPSeg -> 720P", disable=not progress):
        resize_vipseg_frame(*job, height=height)
    return len(jobs)


def read_video_list(list_file: str) -> List[str]:
    """Video names of a VIPSeg split list (one per line), checked for duplicates."""
    require_file(list_file, "VIPSeg split list")
    with open(list_file) as f:
        videos = [line.strip() for line in f if line.strip()]
    dup = sorted({v for v in videos if videos.count(v) > 1})
    if dup:
        raise ValueError(f"{list_file}: video(s) {dup[:5]} listed twice")
    return videos


def convert_vipseg_video(mask_dir: str, out_dir: str, video_id: str) -> Tuple[Dict, Dict]:
    """One video's panoptic PNGs; returns its ``videos`` and ``annotations`` json entries."""
    images, annotations = [], []
    for name in sorted(n for n in os.listdir(mask_dir) if n.endswith(".png")):
        stem = os.path.splitext(name)[0]
        path = os.path.join(mask_dir, name)
        try:
            ids, segments = vipseg_mask_to_segments(np.asarray(Image.open(path)))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
        atomic_save_png(encode_panoptic_ids(ids), os.path.join(out_dir, name))
        images.append({"id": stem, "file_name": stem + ".jpg", "height": int(ids.shape[0]),
                       "width": int(ids.shape[1])})
        annotations.append({"image_id": stem, "file_name": name, "segments_info": segments})
    return ({"video_id": video_id, "images": images},
            {"video_id": video_id, "annotations": annotations})


def convert_vipseg_panoptic(
    root_720p: str,
    split: str,
    videos: Sequence[str],
    out_root: Optional[str] = None,
    categories: Optional[Sequence[Dict]] = None,
    progress: bool = True,
) -> str:
    """``<root_720p>/panomasks/<video>`` -> ``<out_root>/panomasksRGB/<video>`` and
    ``<out_root>/panoptic_gt_VIPSeg_{split}.json`` for the ``videos`` of ``split``
    (``out_root`` defaults to ``root_720p``). Returns the json path."""
    from omgseg.data.datasets.builtin_categories import VIPSEG_CATEGORIES

    out_root = out_root or root_720p
    cats = [{"id": c["id"], "name": c.get("raw_name", c["name"]), "isthing": c["isthing"],
             "color": c["color"]} for c in (categories or VIPSEG_CATEGORIES)]
    mask_root = require_dir(os.path.join(root_720p, "panomasks"), "VIPSeg 720P mask directory",
                            "datasets/prepare_vipseg.py")
    entries_v, entries_a = [], []
    for video in tqdm(videos, desc=f"VIPSeg {split} panoptic", disable=not progress):
        mask_dir = require_dir(os.path.join(mask_root, video), "VIPSeg 720P video masks")
        v, a = convert_vipseg_video(mask_dir, os.path.join(out_root, "panomasksRGB", video),
                                    video)
        entries_v.append(v)
        entries_a.append(a)
    path = os.path.join(out_root, f"panoptic_gt_VIPSeg_{split}.json")
    atomic_write_json({"videos": entries_v, "annotations": entries_a, "categories": cats}, path)
    return path
