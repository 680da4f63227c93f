"""Conversions between annotation formats (importable; ``datasets/prepare_*.py`` are thin CLIs).

* COCO panoptic (json + RGB-id PNGs) -> semantic PNGs (contiguous ids, 255 = unlabelled).
* COCO panoptic -> COCO instances json (things only, RLE masks, crowd kept with ``iscrowd``).
* ADE20K: SceneParsing PNGs -> ``annotations_detectron2`` (value - 1, 0 -> 255), and semantic +
  instance PNGs -> COCO panoptic json + PNGs.

The ``ensure_*`` functions build their output in a temporary location and rename it into place,
so a reader never sees a half-written directory or file.
"""
import json
import logging
import os
import shutil
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from panopticapi.utils import id2rgb, rgb2id
from PIL import Image

from .utils import atomic_save_png, atomic_write_json, default_mode, require_dir, require_file

logger = logging.getLogger(__name__)

__all__ = [
    "read_panoptic_png",
    "encode_panoptic_ids",
    "segment_bbox",
    "panoptic_to_semantic",
    "convert_panoptic_to_semantic",
    "panoptic_to_instance_annotations",
    "convert_panoptic_to_instances",
    "ensure_semantic_dir",
    "ensure_instances_json",
    "ade20k_semantic_to_detectron2",
    "convert_ade20k_sem_seg",
    "ade20k_panoptic_from_annotations",
    "convert_ade20k_panoptic",
]

IGNORE_LABEL = 255


# ------------------------------------------------------------------------------------ basics
def read_panoptic_png(path: str) -> np.ndarray:
    """Segment ids (int64 [H, W]) of a COCO-panoptic PNG: id = R + 256 * G + 256 ** 2 * B."""
    return rgb2id(np.asarray(Image.open(path).convert("RGB"), dtype=np.int64))


def encode_panoptic_ids(ids: np.ndarray) -> np.ndarray:
    """Inverse of :func:`read_panoptic_png`: int [H, W] -> uint8 RGB [H, W, 3]."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.min() < 0 or ids.max() >= 256 ** 3:
        raise ValueError("panoptic segment ids must lie in [0, 256**3)")
    return id2rgb(ids)


def segment_bbox(mask: np.ndarray) -> List[int]:
    """XYWH box (ints) of a boolean mask; [0, 0, 0, 0] when empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(xs) == 0:
        return [0, 0, 0, 0]
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]


def _load_json(path: str, prepare: Optional[str] = None) -> dict:
    require_file(path, "Annotation json", prepare)
    with open(path) as f:
        return json.load(f)


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc)


def _default_id_map(categories: Sequence[Dict]) -> Dict[int, int]:
    """Contiguous id = position in the json's category list."""
    return {c["id"]: i for i, c in enumerate(categories)}


# ------------------------------------------------------------------- panoptic -> semantic
def panoptic_to_semantic(
    pan_ids: np.ndarray, segments_info: Iterable[Dict], id_map: Dict[int, int], source: str = ""
) -> np.ndarray:
    """Semantic map (uint8 [H, W]): each segment's pixels get its contiguous class id, pixels of
    no listed segment (id 0 / void) get 255. Crowd segments keep their class (as in Mask2Former's
    COCO conversion): semantic segmentation has no notion of crowd."""
    out = np.full(pan_ids.shape, IGNORE_LABEL, dtype=np.uint8)
    for seg in segments_info:
        cat = seg["category_id"]
        if cat not in id_map:
            raise ValueError(f"{source}: unknown category id {cat!r} (segment id {seg['id']})")
        value = id_map[cat]
        if not 0 <= value < IGNORE_LABEL:
            raise ValueError(f"contiguous id {value} of category {cat} does not fit below 255")
        out[pan_ids == seg["id"]] = value
    return out


def _semantic_job(args):
    pan_path, out_path, segments_info, id_map, source = args
    pan_ids = read_panoptic_png(pan_path)
    atomic_save_png(panoptic_to_semantic(pan_ids, segments_info, id_map, source), out_path)
    return out_path


def convert_panoptic_to_semantic(
    panoptic_json: str,
    panoptic_root: str,
    out_dir: str,
    id_map: Optional[Dict[int, int]] = None,
    progress: bool = True,
    num_workers: int = 0,
    skip_existing: bool = False,
) -> int:
    """Write one semantic PNG per annotation of a COCO panoptic json into ``out_dir`` (same file
    name as the panoptic PNG). ``id_map`` (dataset id -> contiguous id) defaults to the order of
    the json's categories. Returns the number of PNGs written."""
    data = _load_json(panoptic_json)
    require_dir(panoptic_root, "Panoptic PNG directory")
    if id_map is None:
        id_map = _default_id_map(data["categories"])
    id_map = {int(k): int(v) for k, v in id_map.items()}
    os.makedirs(out_dir, exist_ok=True)
    jobs = []
    for ann in data["annotations"]:
        out_path = os.path.join(out_dir, ann["file_name"])
        if skip_existing and os.path.isfile(out_path):
            continue
        source = f"{panoptic_json} (image {ann['image_id']})"
        jobs.append(
            (os.path.join(panoptic_root, ann["file_name"]), out_path, ann["segments_info"],
             id_map, source)
        )
    if num_workers and num_workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(num_workers) as pool:
            it = pool.imap_unordered(_semantic_job, jobs, chunksize=16)
            for _ in _progress(it, len(jobs), "panoptic -> semantic", progress):
                pass
    else:
        for job in _progress(jobs, len(jobs), "panoptic -> semantic", progress):
            _semantic_job(job)
    return len(jobs)


# ------------------------------------------------------------------ panoptic -> instances
def panoptic_to_instance_annotations(
    pan_ids: np.ndarray,
    segments_info: Iterable[Dict],
    thing_ids: Iterable[int],
    image_id,
    first_annotation_id: int = 1,
) -> List[Dict]:
    """COCO instance annotations (RLE) for the thing segments of one panoptic image.
    Crowd segments are kept with ``iscrowd = 1``; segments with no pixels are dropped."""
    import pycocotools.mask as mask_util

    thing_ids = set(thing_ids)
    anns = []
    next_id = first_annotation_id
    for seg in segments_info:
        if seg["category_id"] not in thing_ids:
            continue
        mask = pan_ids == seg["id"]
        area = int(mask.sum())
        if area == 0:
            logger.warning("Image %s: segment %s has no pixels; skipped.", image_id, seg["id"])
            continue
        rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        anns.append(
            {
                "id": next_id,
                "image_id": image_id,
                "category_id": int(seg["category_id"]),
                "segmentation": rle,
                "area": area,
                "bbox": segment_bbox(mask),
                "iscrowd": int(seg.get("iscrowd", 0)),
            }
        )
        next_id += 1
    return anns


def convert_panoptic_to_instances(
    panoptic_json: str,
    panoptic_root: str,
    out_json: Optional[str] = None,
    progress: bool = True,
) -> dict:
    """A COCO instances json (things only, RLE masks) from a COCO panoptic json + PNGs.

    Categories: the json's thing categories (``isthing == 1``), with their dataset ids. Images:
    the json's ``images`` entries. Written atomically to ``out_json`` when given; returned."""
    data = _load_json(panoptic_json)
    require_dir(panoptic_root, "Panoptic PNG directory")
    things = [c for c in data["categories"] if c.get("isthing", 0)]
    thing_ids = {c["id"] for c in things}
    known = {c["id"] for c in data["categories"]}
    annotations: List[Dict] = []
    for ann in _progress(data["annotations"], len(data["annotations"]), "panoptic -> instances",
                         progress):
        for seg in ann["segments_info"]:
            if seg["category_id"] not in known:
                raise ValueError(
                    f"{panoptic_json}: unknown category id {seg['category_id']!r} "
                    f"(image {ann['image_id']}, segment {seg['id']})"
                )
        pan_ids = read_panoptic_png(os.path.join(panoptic_root, ann["file_name"]))
        annotations += panoptic_to_instance_annotations(
            pan_ids, ann["segments_info"], thing_ids, ann["image_id"], len(annotations) + 1
        )
    images = data.get("images")
    if images is None:
        raise ValueError(f"{panoptic_json} has no 'images' list")
    out = {
        "info": data.get("info", {"description": f"instances converted from {panoptic_json}"}),
        "licenses": data.get("licenses", []),
        "images": images,
        "annotations": annotations,
        "categories": [
            {k: c[k] for k in ("id", "name", "supercategory") if k in c} for c in things
        ],
    }
    if out_json is not None:
        atomic_write_json(out, out_json)
    return out


# ------------------------------------------------------------ create-once (atomic) helpers
def ensure_semantic_dir(
    panoptic_json: str, panoptic_root: str, out_dir: str, id_map: Optional[Dict[int, int]] = None
) -> bool:
    """Create ``out_dir`` with semantic PNGs unless it exists. Built in a temporary sibling
    directory and renamed into place. Returns True if it was created now."""
    if os.path.isdir(out_dir):
        return False
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(out_dir) + "-", dir=parent)
    try:
        n = convert_panoptic_to_semantic(panoptic_json, panoptic_root, tmp, id_map, progress=False)
        os.chmod(tmp, default_mode(is_dir=True))
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not os.path.isdir(out_dir):  # not a concurrent creator: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return False
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Created %d semantic PNGs from %s in %s", n, panoptic_json, out_dir)
    return True


def ensure_instances_json(panoptic_json: str, panoptic_root: str, out_json: str) -> bool:
    """Create the things-only instances json ``out_json`` unless it exists (atomic write)."""
    if os.path.isfile(out_json):
        return False
    out = convert_panoptic_to_instances(panoptic_json, panoptic_root, out_json, progress=False)
    logger.info(
        "Created %s (%d instances) from %s", out_json, len(out["annotations"]), panoptic_json
    )
    return True


# ------------------------------------------------------------------------------- ADE20K
def ade20k_semantic_to_detectron2(sem: np.ndarray) -> np.ndarray:
    """SceneParsing PNG values 0 (other) .. 150 -> 255, 0 .. 149 (uint8 wrap of value - 1)."""
    sem = np.asarray(sem)
    if sem.dtype != np.uint8:
        raise ValueError(f"expected a uint8 ADE20K annotation, got {sem.dtype}")
    return sem - np.uint8(1)  # 0 wraps to 255


def convert_ade20k_sem_seg(in_dir: str, out_dir: str, progress: bool = True) -> int:
    """``annotations/<split>/*.png`` -> ``annotations_detectron2/<split>/*.png``."""
    require_dir(in_dir, "ADE20K annotation directory")
    files = sorted(f for f in os.listdir(in_dir) if f.endswith(".png"))
    for name in _progress(files, len(files), "ADE20K sem seg", progress):
        sem = np.asarray(Image.open(os.path.join(in_dir, name)))
        atomic_save_png(ade20k_semantic_to_detectron2(sem), os.path.join(out_dir, name))
    return len(files)


def ade20k_panoptic_from_annotations(
    sem: np.ndarray,
    inst: np.ndarray,
    categories: Sequence[Dict],
    instance_to_sem: Dict[int, int],
) -> Tuple[np.ndarray, List[Dict]]:
    """One ADE20K panoptic image from its SceneParsing PNG and its instance PNG.

    ``sem``: uint8 [H, W], 0 = other, k = SceneParse class k (1-based). ``inst``: uint8
    [H, W, 3], R = Instance100 class (1-based, 0 = none), G = instance index (0 = none).
    Stuff segments come from ``sem`` (one per stuff class present; thing classes in ``sem`` are
    not used); thing segments from ``inst`` (one per (class, index) pair, class mapped to the
    150-class id), pasted over the stuff. Returns (segment ids int64 [H, W], segments_info with
    dataset ids 0..149, area and bbox from the final map). Segment ids are 1, 2, ... in order.
    """
    is_thing = {c["id"]: bool(c["isthing"]) for c in categories}
    ids = np.zeros(sem.shape[:2], dtype=np.int64)
    cats: List[int] = []
    for value in np.unique(sem):
        cat = int(value) - 1
        if value == 0 or is_thing.get(cat, True):
            continue
        cats.append(cat)
        ids[sem == value] = len(cats)
    if inst.ndim != 3 or inst.shape[2] < 2:
        raise ValueError("ADE20K instance PNG must be RGB (R = class, G = instance index)")
    cls, idx = inst[..., 0].astype(np.int64), inst[..., 1].astype(np.int64)
    pairs = np.unique(np.stack([cls[idx > 0], idx[idx > 0]], axis=1), axis=0) if (idx > 0).any() \
        else np.zeros((0, 2), dtype=np.int64)
    for c, i in pairs:
        if int(c) not in instance_to_sem:
            raise ValueError(f"unknown ADE20K instance class {int(c)} (instance {int(i)})")
        cats.append(instance_to_sem[int(c)] - 1)
        ids[(cls == c) & (idx == i)] = len(cats)
    segments = []
    for seg_id, cat in enumerate(cats, start=1):
        mask = ids == seg_id
        area = int(mask.sum())
        if area == 0:
            continue
        segments.append(
            {"id": seg_id, "category_id": int(cat), "area": area, "bbox": segment_bbox(mask),
             "iscrowd": 0}
        )
    return ids, segments


def convert_ade20k_panoptic(
    image_dir: str,
    semantic_dir: str,
    instance_dir: str,
    out_dir: str,
    out_json: str,
    categories: Optional[Sequence[Dict]] = None,
    progress: bool = True,
) -> dict:
    """ADE20K panoptic json + PNGs (Mask2Former layout) from ``annotations/`` and
    ``annotations_instance/``. Image ids are the file stems (strings)."""
    from .builtin_categories import ADE20K_150_CATEGORIES, ADE20K_INSTANCE100_TO_SEM150

    categories = list(categories or ADE20K_150_CATEGORIES)
    for d, what in ((image_dir, "ADE20K image directory"),
                    (semantic_dir, "ADE20K annotation directory"),
                    (instance_dir, "ADE20K instance annotation directory (annotations_instance)")):
        require_dir(d, what)
    names = sorted(f for f in os.listdir(image_dir) if f.endswith(".jpg"))
    images, annotations = [], []
    for name in _progress(names, len(names), "ADE20K panoptic", progress):
        stem = os.path.splitext(name)[0]
        sem = np.asarray(Image.open(os.path.join(semantic_dir, stem + ".png")))
        inst = np.asarray(Image.open(os.path.join(instance_dir, stem + ".png")).convert("RGB"))
        ids, segments = ade20k_panoptic_from_annotations(
            sem, inst, categories, ADE20K_INSTANCE100_TO_SEM150
        )
        atomic_save_png(encode_panoptic_ids(ids), os.path.join(out_dir, stem + ".png"))
        images.append({"id": stem, "file_name": name, "height": int(sem.shape[0]),
                       "width": int(sem.shape[1])})
        annotations.append({"image_id": stem, "file_name": stem + ".png",
                            "segments_info": segments})
    out = {"images": images, "annotations": annotations, "categories": categories}
    atomic_write_json(out, out_json)
    return out
