"""COCO-format panoptic datasets (with semantic PNGs): COCO 2017, COCO-SAM, the real COCO sample.

Records (one per image)::

    {"file_name", "image_id", "height", "width", "pan_seg_file_name", "sem_seg_file_name",
     "segments_info": [{"id", "category_id" (contiguous), "isthing", "iscrowd", "area", "bbox"}]}

The same loader serves ADE20K panoptic and the synthetic OMG-Shapes benchmark.
"""
import json
import logging
import os
from typing import Dict, List, Optional

from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

from .panoptic_conversions import ensure_instances_json, ensure_semantic_dir
from .utils import (
    convert_segment_category,
    image_id_from,
    panoptic_metadata,
    register_dataset,
    require_dir,
    require_file,
)

logger = logging.getLogger(__name__)

__all__ = [
    "COCO_PANOPTIC_CATEGORIES",
    "get_coco_panoptic_metadata",
    "load_panoptic_json",
    "load_sam_json",
    "register_panoptic_with_sem_seg",
    "register_all_coco_panoptic",
    "register_all_coco_sam",
    "coco_sample_dir",
    "prepare_coco_panoptic_sample",
    "register_coco_panoptic_sample",
]

COCO_PANOPTIC_CATEGORIES: List[Dict] = [dict(c) for c in COCO_CATEGORIES]  # 133, id order

PREPARE_COCO_SEMANTIC = "datasets/prepare_coco_semantic.py"


def get_coco_panoptic_metadata() -> Dict:
    """COCO panoptic metadata (Mask2Former convention): 133 stuff_classes, 80 thing_classes."""
    return panoptic_metadata(COCO_PANOPTIC_CATEGORIES)


def load_panoptic_json(
    json_file: str,
    image_dir: str,
    gt_dir: str,
    semseg_dir: Optional[str],
    meta: Dict,
    image_ext: str = ".jpg",
    prepare_hint: Optional[str] = None,
) -> List[Dict]:
    """Load a COCO-format panoptic json (+ PNG directory, + optional semantic PNG directory).

    Image file names come from the json's ``images`` list (falling back to the PNG stem +
    ``image_ext``). Category ids are converted with ``meta``'s ``thing_/stuff_dataset_id_to_
    contiguous_id``; an unknown id raises ValueError naming the file and the id.
    """
    require_file(json_file, "Panoptic annotation json", prepare_hint)
    require_dir(image_dir, "Image directory")
    require_dir(gt_dir, "Panoptic PNG directory", prepare_hint)
    if semseg_dir is not None:
        require_dir(semseg_dir, "Semantic PNG directory", prepare_hint or PREPARE_COCO_SEMANTIC)
    with open(json_file) as f:
        data = json.load(f)
    images = {img["id"]: img for img in data.get("images", [])}
    records = []
    for ann in data["annotations"]:
        image_id = ann["image_id"]
        img = images.get(image_id)
        stem = os.path.splitext(ann["file_name"])[0]
        image_name = img["file_name"] if img is not None else stem + image_ext
        source = f"{json_file} (image {image_id})"
        record = {
            "file_name": os.path.join(image_dir, image_name),
            "image_id": image_id_from(image_id),
            "pan_seg_file_name": os.path.join(gt_dir, ann["file_name"]),
            "segments_info": [
                convert_segment_category(s, meta, source) for s in ann["segments_info"]
            ],
        }
        if img is not None:
            record["height"], record["width"] = int(img["height"]), int(img["width"])
        if semseg_dir is not None:
            record["sem_seg_file_name"] = os.path.join(semseg_dir, stem + ".png")
        records.append(record)
    if not records:
        raise ValueError(f"{json_file} has no annotations")
    first = records[0]
    require_file(first["file_name"], "Image")
    require_file(first["pan_seg_file_name"], "Panoptic PNG", prepare_hint)
    if semseg_dir is not None:
        require_file(first["sem_seg_file_name"], "Semantic PNG",
                     prepare_hint or PREPARE_COCO_SEMANTIC)
    logger.info("Loaded %d panoptic images from %s", len(records), json_file)
    return records


def load_sam_json(
    json_file: str, image_dir: str, gt_dir: str, meta: Dict, image_ext: str = ".jpg"
) -> List[Dict]:
    """COCO-SAM: class-agnostic prompt records from a COCO panoptic json.

    Every non-crowd segment, thing or stuff, is an instance to prompt; segments with area <= 0
    or a box narrower / lower than 1 pixel are dropped, and so are images left with none. The
    records are panoptic records (``segments_info`` keeps contiguous ``category_id`` and
    ``isthing`` for reference) without ``sem_seg_file_name``."""
    records = load_panoptic_json(json_file, image_dir, gt_dir, None, meta, image_ext)
    out = []
    dropped = 0
    for r in records:
        segs = [
            s for s in r["segments_info"]
            if not s.get("iscrowd", 0) and s.get("area", 1) > 0
            and "bbox" in s and s["bbox"][2] >= 1 and s["bbox"][3] >= 1
        ]
        dropped += len(r["segments_info"]) - len(segs)
        if segs:
            out.append(dict(r, segments_info=segs))
    logger.info(
        "COCO-SAM %s: %d images with prompts (%d dropped), %d segments left out (crowd / empty)",
        json_file, len(out), len(records) - len(out), dropped,
    )
    return out


def register_panoptic_with_sem_seg(
    name: str,
    metadata: Dict,
    image_root: str,
    panoptic_root: str,
    panoptic_json: str,
    sem_seg_root: str,
    instances_json: Optional[str],
    image_ext: str = ".jpg",
    prepare_hint: Optional[str] = None,
    evaluator_type: str = "coco_panoptic_seg",
) -> bool:
    """Register a COCO-format panoptic dataset whose records also carry semantic PNGs."""
    meta = dict(metadata)
    return register_dataset(
        name,
        lambda: load_panoptic_json(
            panoptic_json, image_root, panoptic_root, sem_seg_root, meta, image_ext, prepare_hint
        ),
        dict(
            meta,
            panoptic_root=panoptic_root,
            image_root=image_root,
            panoptic_json=panoptic_json,
            sem_seg_root=sem_seg_root,
            json_file=instances_json,
            evaluator_type=evaluator_type,
            ignore_label=255,
            label_divisor=1000,
        ),
    )


_COCO_SPLITS = {
    "train": ("coco/train2017", "coco/panoptic_train2017",
              "coco/annotations/panoptic_train2017.json", "coco/panoptic_semseg_train2017",
              "coco/annotations/instances_train2017.json"),
    "val": ("coco/val2017", "coco/panoptic_val2017", "coco/annotations/panoptic_val2017.json",
            "coco/panoptic_semseg_val2017", "coco/annotations/instances_val2017.json"),
}


def register_all_coco_panoptic(root: str, prefix: str = "") -> List[str]:
    """``{prefix}coco_2017_{train,val}_panoptic_with_sem_seg`` (instances: Detectron2's
    ``coco_2017_{train,val}``, same image root and instances json)."""
    names = []
    meta = get_coco_panoptic_metadata()
    for split, (images, pan_root, pan_json, sem_root, inst_json) in _COCO_SPLITS.items():
        name = f"{prefix}coco_2017_{split}_panoptic_with_sem_seg"
        register_panoptic_with_sem_seg(
            name, meta, os.path.join(root, images), os.path.join(root, pan_root),
            os.path.join(root, pan_json), os.path.join(root, sem_root),
            os.path.join(root, inst_json),
        )
        names.append(name)
    return names


def register_all_coco_sam(root: str, prefix: str = "") -> List[str]:
    """``{prefix}coco_2017_{train,val}_sam``: class-agnostic prompts on COCO panoptic files."""
    names = []
    meta = get_coco_panoptic_metadata()
    for split, (images, pan_root, pan_json, _, inst_json) in _COCO_SPLITS.items():
        name = f"{prefix}coco_2017_{split}_sam"
        image_root, panoptic_root, panoptic_json = (
            os.path.join(root, images), os.path.join(root, pan_root), os.path.join(root, pan_json)
        )
        register_dataset(
            name,
            lambda j=panoptic_json, i=image_root, p=panoptic_root: load_sam_json(j, i, p, meta),
            dict(
                meta,
                image_root=image_root,
                panoptic_root=panoptic_root,
                panoptic_json=panoptic_json,
                json_file=os.path.join(root, inst_json),
                evaluator_type="coco_sam",
                class_agnostic=True,
                ignore_label=255,
                label_divisor=1000,
            ),
        )
        names.append(name)
    return names


# ----------------------------------------------------------------------- the real COCO sample
COCO_SAMPLE_NAME = "coco_panoptic_sample"


def coco_sample_dir() -> str:
    """``$OMGSEG_COCO_SAMPLE``, else ``<repo>/../shared/data/coco-panoptic-sample``."""
    env = os.getenv("OMGSEG_COCO_SAMPLE")
    if env:
        return os.path.expanduser(env)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    return os.path.join(os.path.dirname(repo), "shared", "data", "coco-panoptic-sample")


def _sample_paths(sample_dir: str, out_root: str) -> Dict[str, str]:
    return {
        "image_root": os.path.join(sample_dir, "input_images"),
        "panoptic_root": os.path.join(sample_dir, "panoptic_examples"),
        "panoptic_json": os.path.join(sample_dir, "panoptic_examples.json"),
        "categories_json": os.path.join(sample_dir, "panoptic_coco_categories.json"),
        "sem_seg_root": os.path.join(out_root, "panoptic_semseg"),
        "json_file": os.path.join(out_root, "instances.json"),
    }


def prepare_coco_panoptic_sample(sample_dir: str, out_root: str) -> Dict[str, bool]:
    """Derive the sample's semantic PNGs and things-only instances json into ``out_root``
    (``$DETECTRON2_DATASETS/coco_panoptic_sample``) if absent. The sample folder is read-only."""
    p = _sample_paths(sample_dir, out_root)
    hint = "datasets/prepare_coco_panoptic_sample.py"
    require_file(p["panoptic_json"], "COCO sample panoptic json", hint)
    require_dir(p["panoptic_root"], "COCO sample panoptic PNG directory", hint)
    id_map = get_coco_panoptic_metadata()["stuff_dataset_id_to_contiguous_id"]
    return {
        "semantic": ensure_semantic_dir(p["panoptic_json"], p["panoptic_root"], p["sem_seg_root"],
                                        id_map),
        "instances": ensure_instances_json(p["panoptic_json"], p["panoptic_root"], p["json_file"]),
    }


def _load_coco_sample(sample_dir: str, out_root: str, meta: Dict) -> List[Dict]:
    prepare_coco_panoptic_sample(sample_dir, out_root)
    p = _sample_paths(sample_dir, out_root)
    return load_panoptic_json(p["panoptic_json"], p["image_root"], p["panoptic_root"],
                              p["sem_seg_root"], meta)


def register_coco_panoptic_sample(
    root: str, sample_dir: Optional[str] = None, name: str = COCO_SAMPLE_NAME
) -> bool:
    """Register the real COCO sample as a COCO-panoptic-with-sem-seg dataset. Derived files go
    to ``<root>/coco_panoptic_sample/`` and are created on first load."""
    sample_dir = sample_dir or coco_sample_dir()
    out_root = os.path.join(root, "coco_panoptic_sample")
    meta = get_coco_panoptic_metadata()
    p = _sample_paths(sample_dir, out_root)
    return register_dataset(
        name,
        lambda: _load_coco_sample(sample_dir, out_root, meta),
        dict(
            meta,
            image_root=p["image_root"],
            panoptic_root=p["panoptic_root"],
            panoptic_json=p["panoptic_json"],
            sem_seg_root=p["sem_seg_root"],
            json_file=p["json_file"],
            evaluator_type="coco_panoptic_seg",
            ignore_label=255,
            label_divisor=1000,
        ),
    )
