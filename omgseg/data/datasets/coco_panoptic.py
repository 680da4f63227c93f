"""COCO-format panoptic datasets (with semantic PNGs): COCO 2017, COCO-SAM, the real COCO sample.

Records (one per image)::

    {"file_name", "image_id", "height", "width", "pan_seg_file_name", "sem_seg_file_name",
     "segments_info": [{"id", "category_id" (contiguous), "isthing", "iscrowd", "area", "bbox"}]}

The same loader serves ADE20K panoptic and the synthetic OMG-Shapes benchmark.
"""
import logging
import os
from typing import Dict, List, Optional

from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

from .utils import (
    convert_segment_category,
    image_id_from,
    panoptic_metadata,
    register_dataset,
    require_dir,
    require_file,
)
from .validation import check_unique_ids, load_json

logger = logging.getLogger(__name__)

__all__ = [
    "COCO_PANOPTIC_CATEGORIES",
    "get_coco_panoptic_metadata",
    "load_panoptic_json",
    "load_sam_json",
    "register_panoptic_with_sem_seg",
    "register_all_coco_panoptic",
    "register_all_coco_sam",
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

    One record per entry of the json's ``images`` list, with its file name and size (without an
    ``images`` list: one per annotation entry, image = PNG stem + ``image_ext``). An image without
    an annotation entry has no PNG: it is kept as an unlabelled (all-void) image with an empty
    ``segments_info`` and a warning counts them (training drops it with
    ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``). Category ids are converted with ``meta``'s
    ``thing_/stuff_dataset_id_to_contiguous_id``. Malformed JSON, duplicate image ids, two
    annotation entries for one image, an entry for an image not in ``images`` and unknown
    category ids are errors naming the json and the ids.

    Detectron2's ``load_coco_panoptic_json`` is not wrapped: it requires integer image ids (ADE20K
    uses strings) and ``.jpg`` images, and skips images without an annotation entry.
    """
    require_file(json_file, "Panoptic annotation json", prepare_hint)
    require_dir(image_dir, "Image directory")
    require_dir(gt_dir, "Panoptic PNG directory", prepare_hint)
    if semseg_dir is not None:
        require_dir(semseg_dir, "Semantic PNG directory", prepare_hint or PREPARE_COCO_SEMANTIC)
    data = load_json(json_file)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise ValueError(f"{json_file}: not a COCO panoptic json (no 'annotations' list)")
    if not data["annotations"]:
        raise ValueError(f"{json_file} has no annotations")
    check_unique_ids((a["image_id"] for a in data["annotations"]), json_file,
                     "image id of an annotation entry")
    anns = {a["image_id"]: a for a in data["annotations"]}
    images = data.get("images")
    if images is None:
        entries = [(None, a) for a in data["annotations"]]
    else:
        check_unique_ids((img["id"] for img in images), json_file, "image id")
        orphans = set(anns) - {img["id"] for img in images}
        if orphans:
            raise ValueError(f"{json_file}: annotation entries for image ids that are not in "
                             f"'images': {sorted(orphans, key=str)[:10]}")
        entries = [(img, anns.get(img["id"])) for img in images]

    records, unannotated = [], []
    for img, ann in entries:
        image_id = img["id"] if img is not None else ann["image_id"]
        stem = os.path.splitext(ann["file_name"] if ann is not None else img["file_name"])[0]
        record = {
            "file_name": os.path.join(image_dir, img["file_name"] if img else stem + image_ext),
            "image_id": image_id_from(image_id),
        }
        if img is not None:
            record["height"], record["width"] = int(img["height"]), int(img["width"])
        sem_file = os.path.join(semseg_dir, stem + ".png") if semseg_dir is not None else None
        if ann is None:
            unannotated.append(image_id)
            record["segments_info"] = []
            if sem_file is not None and os.path.isfile(sem_file):
                record["sem_seg_file_name"] = sem_file
            records.append(record)
            continue
        source = f"{json_file} (image {image_id})"
        record["pan_seg_file_name"] = os.path.join(gt_dir, ann["file_name"])
        record["segments_info"] = [
            convert_segment_category(s, meta, source) for s in ann["segments_info"]
        ]
        if sem_file is not None:
            record["sem_seg_file_name"] = sem_file
        records.append(record)
    if unannotated:
        logger.warning(
            f"{json_file}: {len(unannotated)} of {len(records)} images have no annotation entry "
            f"(no panoptic PNG) and are kept as unlabelled, all-void images: "
            f"{sorted(unannotated, key=str)[:10]}"
        )
    first = next(r for r in records if "pan_seg_file_name" in r)
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
PREPARE_COCO_SAMPLE = "datasets/prepare_coco_panoptic_sample.py"


def register_coco_panoptic_sample(name: str, sample_dir: str, out_root: str) -> bool:
    """Register a COCO panoptic sample folder (``input_images/``, ``panoptic_examples/``,
    ``panoptic_examples.json``, read-only) as a COCO-panoptic-with-sem-seg dataset ``name``.

    Its semantic PNGs and things-only instances json are read from ``out_root``
    (``panoptic_semseg/``, ``instances.json``), written there beforehand by
    ``datasets/prepare_coco_panoptic_sample.py --sample-dir SAMPLE_DIR --out OUT_ROOT``.
    """
    sem_seg_root = os.path.join(out_root, "panoptic_semseg")
    return register_panoptic_with_sem_seg(
        name, get_coco_panoptic_metadata(), os.path.join(sample_dir, "input_images"),
        os.path.join(sample_dir, "panoptic_examples"),
        os.path.join(sample_dir, "panoptic_examples.json"), sem_seg_root,
        os.path.join(out_root, "instances.json"), prepare_hint=PREPARE_COCO_SAMPLE,
    )
