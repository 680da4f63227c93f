"""Conversions between image annotation formats, used by the ``prepare_*.py`` scripts beside it.

* COCO panoptic (json + RGB-id PNGs) -> semantic PNGs (contiguous ids, 255 = unlabelled).
* COCO panoptic -> COCO instances json (things only, RLE masks, crowd kept with ``iscrowd``).
* ADE20K: SceneParsing PNGs -> ``annotations_detectron2`` (value - 1, 0 -> 255), and semantic +
  instance PNGs -> COCO panoptic json + PNGs.

Inputs get the checks the loaders apply, with errors naming the file: malformed json, duplicate
image ids, a PNG whose size differs from its image, a ``segments_info`` id absent from its PNG,
a non-zero PNG id absent from ``segments_info``, an unknown category id.

A data-preparation module, not part of the installed package: the scripts run as
``python datasets/prepare_x.py`` find it beside them; tests reach it through pytest's
``pythonpath``. The functions write to the paths they are given; the scripts give them the
temporary folder of an :class:`omgseg.utils.file_io.ManagedOutput`.
"""
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
from panopticapi.utils import id2rgb, rgb2id
from PIL import Image
from tqdm import tqdm

from omgseg.data.datasets.utils import atomic_save_png, atomic_write_json, require_dir, require_file
from omgseg.data.datasets.validation import check_unique_ids, load_json

__all__ = [
    "CONVERSIONS_VERSION",
    "load_annotation_json",
    "read_panoptic_png",
    "encode_panoptic_ids",
    "segment_area_bbox",
    "check_panoptic_png",
    "panoptic_to_semantic",
    "convert_panoptic_to_semantic",
    "panoptic_to_instance_annotations",
    "convert_panoptic_to_instances",
    "ade20k_semantic_to_detectron2",
    "convert_ade20k_sem_seg",
    "ade20k_panoptic_from_annotations",
    "convert_ade20k_panoptic",
]

# Recorded in the outputs' manifests; bump when the output for the same input changes.
CONVERSIONS_VERSION = "1"
IGNORE_LABEL = 255


# ------------------------------------------------------------------------------------ basics
def load_annotation_json(path: str, required: Sequence[str] = ("annotations", "categories"),
                         prepare: Optional[str] = None) -> dict:
    """A COCO-style json, with the loaders' checks (``omgseg.data.datasets.validation``): valid
    JSON, the ``required`` top-level lists, unique image ids in ``images`` and in
    ``annotations`` (one panoptic annotation per image)."""
    require_file(path, "Annotation json", prepare)
    data = load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    for key in required:
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: no {key!r} list")
    check_unique_ids((img["id"] for img in data.get("images") or []), path, "image id")
    check_unique_ids((ann["image_id"] for ann in data["annotations"]), path,
                     "image id in 'annotations'")
    return data


def read_panoptic_png(path: str) -> np.ndarray:
    """Segment ids (int64 [H, W]) of a COCO-panoptic PNG: id = R + 256 * G + 256 ** 2 * B."""
    return rgb2id(np.asarray(Image.open(path).convert("RGB"), dtype=np.int64))


def encode_panoptic_ids(ids: np.ndarray) -> np.ndarray:
    """Inverse of :func:`read_panoptic_png`: int [H, W] -> uint8 RGB [H, W, 3]."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.min() < 0 or ids.max() >= 256 ** 3:
        raise ValueError("panoptic segment ids must lie in [0, 256**3)")
    return id2rgb(ids)


def _rle(mask: np.ndarray) -> dict:
    return mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))


def _area_bbox(rle: dict) -> Tuple[int, List[int]]:
    return int(mask_util.area(rle)), [int(v) for v in mask_util.toBbox(rle)]


def segment_area_bbox(mask: np.ndarray) -> Tuple[int, List[int]]:
    """Pixel count and XYWH box (ints) of a boolean mask, by pycocotools ([0, 0, 0, 0] when
    empty)."""
    return _area_bbox(_rle(mask))


def _progress(iterable, total: int, desc: str, enabled: bool):
    return tqdm(iterable, total=total, desc=desc, disable=not enabled)


def _default_id_map(categories: Sequence[Dict]) -> Dict[int, int]:
    """Contiguous id = position in the json's category list."""
    return {c["id"]: i for i, c in enumerate(categories)}


def _images_by_id(data: dict) -> Dict:
    return {img["id"]: img for img in data.get("images") or []}


def check_panoptic_png(pan_ids: np.ndarray, segments_info: Sequence[Dict], png_path: str,
                       image: Optional[Dict] = None) -> None:
    """The loaders' checks on one panoptic PNG and its ``segments_info``: size equal to the
    json's image ``height`` / ``width`` (when ``image`` is given), unique segment ids, every
    listed id present in the PNG, every non-zero PNG id listed. Errors name the PNG."""
    if image is not None and pan_ids.shape != (int(image["height"]), int(image["width"])):
        raise ValueError(
            f"{png_path}: size {pan_ids.shape[1]} x {pan_ids.shape[0]} (W x H) differs from "
            f"its image {image['id']!r} in the json ({image['width']} x {image['height']})")
    listed = [s["id"] for s in segments_info]
    if len(set(listed)) != len(listed):
        dup = sorted({i for i in listed if listed.count(i) > 1})
        raise ValueError(f"{png_path}: segment id(s) {dup} listed twice in segments_info")
    present = set(np.unique(pan_ids).tolist()) - {0}
    absent = sorted(set(listed) - present)
    if absent:
        raise ValueError(f"{png_path}: segment id(s) {absent} of segments_info are absent "
                         "from the PNG")
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise ValueError(f"{png_path}: non-zero PNG id(s) {unlisted[:10]} are not in "
                         "segments_info")


def _read_checked_png(png_path: str, ann: Dict, image: Optional[Dict]) -> np.ndarray:
    require_file(png_path, "Panoptic PNG")
    pan_ids = read_panoptic_png(png_path)
    check_panoptic_png(pan_ids, ann["segments_info"], png_path, image)
    return pan_ids


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
    pan_path, out_path, ann, image, id_map, source = args
    pan_ids = _read_checked_png(pan_path, ann, image)
    atomic_save_png(panoptic_to_semantic(pan_ids, ann["segments_info"], id_map, source), out_path)
    return out_path


def convert_panoptic_to_semantic(
    panoptic_json: str,
    panoptic_root: str,
    out_dir: str,
    id_map: Optional[Dict[int, int]] = None,
    progress: bool = True,
    num_workers: int = 0,
) -> int:
    """Write one semantic PNG per annotation of a COCO panoptic json into ``out_dir`` (same file
    name as the panoptic PNG). ``id_map`` (dataset id -> contiguous id) defaults to the order of
    the json's categories. Returns the number of PNGs written."""
    data = load_annotation_json(panoptic_json)
    require_dir(panoptic_root, "Panoptic PNG directory")
    if id_map is None:
        id_map = _default_id_map(data["categories"])
    id_map = {int(k): int(v) for k, v in id_map.items()}
    images = _images_by_id(data)
    os.makedirs(out_dir, exist_ok=True)
    jobs = [
        (os.path.join(panoptic_root, ann["file_name"]), os.path.join(out_dir, ann["file_name"]),
         ann, images.get(ann["image_id"]), id_map, f"{panoptic_json} (image {ann['image_id']})")
        for ann in data["annotations"]
    ]
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
    """COCO instance annotations (RLE; area and box by pycocotools) for the thing segments of
    one panoptic image. Crowd segments are kept with ``iscrowd = 1``."""
    thing_ids = set(thing_ids)
    anns = []
    for seg in segments_info:
        if seg["category_id"] not in thing_ids:
            continue
        rle = _rle(pan_ids == seg["id"])
        area, bbox = _area_bbox(rle)
        anns.append(
            {
                "id": first_annotation_id + len(anns),
                "image_id": image_id,
                "category_id": int(seg["category_id"]),
                "segmentation": {"size": [int(v) for v in rle["size"]],
                                 "counts": rle["counts"].decode("ascii")},
                "area": area,
                "bbox": bbox,
                "iscrowd": int(seg.get("iscrowd", 0)),
            }
        )
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
    data = load_annotation_json(panoptic_json, required=("images", "annotations", "categories"))
    require_dir(panoptic_root, "Panoptic PNG directory")
    things = [c for c in data["categories"] if c.get("isthing", 0)]
    thing_ids = {c["id"] for c in things}
    known = {c["id"] for c in data["categories"]}
    images = _images_by_id(data)
    annotations: List[Dict] = []
    for ann in _progress(data["annotations"], len(data["annotations"]), "panoptic -> instances",
                         progress):
        for seg in ann["segments_info"]:
            if seg["category_id"] not in known:
                raise ValueError(
                    f"{panoptic_json}: unknown category id {seg['category_id']!r} "
                    f"(image {ann['image_id']}, segment {seg['id']})"
                )
        if ann["image_id"] not in images:
            raise ValueError(f"{panoptic_json}: annotation of image {ann['image_id']!r}, which "
                             "is not in 'images'")
        pan_ids = _read_checked_png(os.path.join(panoptic_root, ann["file_name"]), ann,
                                    images[ann["image_id"]])
        annotations += panoptic_to_instance_annotations(
            pan_ids, ann["segments_info"], thing_ids, ann["image_id"], len(annotations) + 1
        )
    out = {
        "info": data.get("info", {"description": f"instances converted from {panoptic_json}"}),
        "licenses": data.get("licenses", []),
        "images": data["images"],
        "annotations": annotations,
        "categories": [
            {k: c[k] for k in ("id", "name", "supercategory") if k in c} for c in things
        ],
    }
    if out_json is not None:
        atomic_write_json(out, out_json)
    return out


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
        path = os.path.join(in_dir, name)
        try:
            sem = ade20k_semantic_to_detectron2(np.asarray(Image.open(path)))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
        atomic_save_png(sem, os.path.join(out_dir, name))
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
    if inst.ndim != 3 or inst.shape[2] < 2:
        raise ValueError("ADE20K instance PNG must be RGB (R = class, G = instance index)")
    if inst.shape[:2] != sem.shape[:2]:
        raise ValueError(f"instance PNG size {inst.shape[1]} x {inst.shape[0]} (W x H) differs "
                         f"from the annotation PNG's {sem.shape[1]} x {sem.shape[0]}")
    is_thing = {c["id"]: bool(c["isthing"]) for c in categories}
    ids = np.zeros(sem.shape[:2], dtype=np.int64)
    cats: List[int] = []
    for value in np.unique(sem):
        cat = int(value) - 1
        if value == 0 or is_thing.get(cat, True):
            continue
        cats.append(cat)
        ids[sem == value] = len(cats)
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
        area, bbox = segment_area_bbox(ids == seg_id)
        if area == 0:
            continue
        segments.append(
            {"id": seg_id, "category_id": int(cat), "area": area, "bbox": bbox, "iscrowd": 0}
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
    from omgseg.data.datasets.builtin_categories import (
        ADE20K_150_CATEGORIES,
        ADE20K_INSTANCE100_TO_SEM150,
    )

    categories = list(categories or ADE20K_150_CATEGORIES)
    for d, what in ((image_dir, "ADE20K image directory"),
                    (semantic_dir, "ADE20K annotation directory"),
                    (instance_dir, "ADE20K instance annotation directory (annotations_instance)")):
        require_dir(d, what)
    names = sorted(f for f in os.listdir(image_dir) if f.endswith(".jpg"))
    images, annotations = [], []
    for name in _progress(names, len(names), "ADE20K panoptic", progress):
        stem = os.path.splitext(name)[0]
        sem_path = require_file(os.path.join(semantic_dir, stem + ".png"), "ADE20K annotation")
        inst_path = require_file(os.path.join(instance_dir, stem + ".png"),
                                 "ADE20K instance annotation")
        sem = np.asarray(Image.open(sem_path))
        with Image.open(os.path.join(image_dir, name)) as img:
            if img.size != (sem.shape[1], sem.shape[0]):
                raise ValueError(f"{sem_path}: size {sem.shape[1]} x {sem.shape[0]} (W x H) "
                                 f"differs from its image's {img.size[0]} x {img.size[1]}")
        inst = np.asarray(Image.open(inst_path).convert("RGB"))
        try:
            ids, segments = ade20k_panoptic_from_annotations(
                sem, inst, categories, ADE20K_INSTANCE100_TO_SEM150
            )
        except ValueError as e:
            raise ValueError(f"{inst_path}: {e}") from e
        atomic_save_png(encode_panoptic_ids(ids), os.path.join(out_dir, stem + ".png"))
        images.append({"id": stem, "file_name": name, "height": int(sem.shape[0]),
                       "width": int(sem.shape[1])})
        annotations.append({"image_id": stem, "file_name": stem + ".png",
                            "segments_info": segments})
    out = {"images": images, "annotations": annotations, "categories": categories}
    atomic_write_json(out, out_json)
    return out
