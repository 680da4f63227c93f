"""YouTube-VIS 2019 / 2021 (and any YTVIS-format json): loader and registration.

Record (one per video)::

    {"video_id", "file_names": [T paths], "length": T, "height", "width",
     "annotations": [T lists of {"id" (track id), "category_id" (contiguous), "segmentation"
                     (compressed RLE dict or polygons), "bbox" (XYWH), "bbox_mode", "iscrowd"}]}

``annotations`` is absent when the json has none (the official valid / test splits).
"""
import logging
import os
from typing import Dict, List, Optional

from detectron2.data import MetadataCatalog
from detectron2.structures import BoxMode

from .builtin_categories import YTVIS_2019_CATEGORIES, YTVIS_2021_CATEGORIES
from .utils import instance_metadata, register_dataset, require_dir, require_file
from .validation import check_unique_ids, load_json

logger = logging.getLogger(__name__)

__all__ = [
    "load_ytvis_json",
    "register_ytvis_instances",
    "register_all_ytvis_2019",
    "register_all_ytvis_2021",
]


def _frame_object(anno: Dict, frame: int, category_id: int, json_file: str) -> Optional[Dict]:
    import pycocotools.mask as mask_util

    segms = anno.get("segmentations") or []
    boxes = anno.get("bboxes") or []
    segm = segms[frame] if frame < len(segms) else None
    if not segm:
        return None
    if isinstance(segm, dict):
        if isinstance(segm.get("counts"), list):  # uncompressed RLE -> compressed
            h, w = segm["size"]
            segm = mask_util.frPyObjects(segm, h, w)
        if isinstance(segm["counts"], bytes):
            segm = dict(segm, counts=segm["counts"].decode("ascii"))
        if mask_util.area(segm) <= 0:
            return None
    else:
        segm = [p for p in segm if len(p) % 2 == 0 and len(p) >= 6]
        if not segm:
            return None
    bbox = boxes[frame] if frame < len(boxes) else None
    if not bbox:
        rle = segm
        if isinstance(segm, list):
            raise ValueError(f"{json_file}: annotation {anno.get('id')} frame {frame} has a "
                             "polygon but no box")
        bbox = mask_util.toBbox(rle).tolist()
    return {
        "id": anno["id"],
        "category_id": category_id,
        "segmentation": segm,
        "bbox": [float(v) for v in bbox],
        "bbox_mode": BoxMode.XYWH_ABS,
        "iscrowd": int(anno.get("iscrowd", 0)),
    }


def load_ytvis_json(json_file: str, image_root: str, dataset_name: Optional[str] = None
                    ) -> List[Dict]:
    """Load a YouTube-VIS json. Category ids become contiguous through the metadata of
    ``dataset_name`` (``thing_dataset_id_to_contiguous_id``) when it has one, else through the
    json's categories sorted by id (and then ``thing_classes`` / the id map are set on the
    metadata of ``dataset_name`` if given). An annotation whose category is not known raises
    ValueError naming the file and the id."""
    require_file(json_file, "YouTube-VIS json")
    require_dir(image_root, "YouTube-VIS image directory")
    data = load_json(json_file)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
        raise ValueError(f"{json_file}: not a YouTube-VIS json (no 'videos' list)")
    check_unique_ids((v["id"] for v in data["videos"]), json_file, "video id")
    check_unique_ids((a["id"] for a in data.get("annotations") or [] if "id" in a), json_file,
                     "annotation id")
    cats = sorted(data.get("categories") or [], key=lambda c: c["id"])
    meta = MetadataCatalog.get(dataset_name) if dataset_name else None
    if meta is not None and hasattr(meta, "thing_dataset_id_to_contiguous_id"):
        id_map = dict(meta.thing_dataset_id_to_contiguous_id)
    else:
        id_map = {c["id"]: i for i, c in enumerate(cats)}
        if meta is not None:
            meta.set(thing_classes=[c["name"] for c in cats],
                     thing_dataset_id_to_contiguous_id=id_map)
    annotations = data.get("annotations")
    by_video: Dict = {}
    for anno in annotations or []:
        cat = anno["category_id"]
        if cat not in id_map:
            raise ValueError(f"{json_file}: unknown category id {cat!r} (annotation "
                             f"{anno.get('id')}, video {anno.get('video_id')})")
        by_video.setdefault(anno["video_id"], []).append(anno)
    orphans = set(by_video) - {v["id"] for v in data["videos"]}
    if orphans:
        raise ValueError(f"{json_file}: annotations of videos not in 'videos': "
                         f"{sorted(orphans, key=str)[:10]}")
    records = []
    for vid in sorted(data["videos"], key=lambda v: v["id"]):
        file_names = [os.path.join(image_root, f) for f in vid["file_names"]]
        length = int(vid.get("length", len(file_names)))
        if length != len(file_names):
            raise ValueError(f"{json_file}: video {vid['id']} has length {length} but "
                             f"{len(file_names)} file names")
        for anno in by_video.get(vid["id"], []):
            for key in ("segmentations", "bboxes"):
                if anno.get(key) is not None and len(anno[key]) != length:
                    raise ValueError(
                        f"{json_file}: video {vid['id']} has {length} frames but annotation "
                        f"{anno.get('id')} lists {len(anno[key])} '{key}' (one per frame needed)")
        record = {
            "video_id": vid["id"],
            "file_names": file_names,
            "length": length,
            "height": int(vid["height"]),
            "width": int(vid["width"]),
        }
        if annotations is not None:
            record["annotations"] = [
                [
                    obj for obj in (
                        _frame_object(a, t, id_map[a["category_id"]], json_file)
                        for a in by_video.get(vid["id"], [])
                    ) if obj is not None
                ]
                for t in range(length)
            ]
        records.append(record)
    if records:
        require_file(records[0]["file_names"][0], "YouTube-VIS frame")
    logger.info("Loaded %d videos in YTVIS format from %s", len(records), json_file)
    return records


def register_ytvis_instances(name: str, metadata: Dict, json_file: str, image_root: str) -> bool:
    return register_dataset(
        name,
        lambda: load_ytvis_json(json_file, image_root, name),
        dict(metadata, json_file=json_file, image_root=image_root, evaluator_type="ytvis"),
    )


_SPLITS = {"train": ("train/JPEGImages", "train.json"), "val": ("valid/JPEGImages", "valid.json")}


def _register_year(root: str, year: int, categories, prefix: str) -> List[str]:
    names = []
    for split, (images, json_name) in _SPLITS.items():
        name = f"{prefix}ytvis_{year}_{split}"
        base = os.path.join(root, f"ytvis_{year}")
        register_ytvis_instances(name, instance_metadata(categories),
                                 os.path.join(base, json_name), os.path.join(base, images))
        names.append(name)
    return names


def register_all_ytvis_2019(root: str, prefix: str = "") -> List[str]:
    """``{prefix}ytvis_2019_{train,val}`` at ``<root>/ytvis_2019/{train,valid}``."""
    return _register_year(root, 2019, YTVIS_2019_CATEGORIES, prefix)


def register_all_ytvis_2021(root: str, prefix: str = "") -> List[str]:
    """``{prefix}ytvis_2021_{train,val}`` at ``<root>/ytvis_2021/{train,valid}``."""
    return _register_year(root, 2021, YTVIS_2021_CATEGORIES, prefix)
