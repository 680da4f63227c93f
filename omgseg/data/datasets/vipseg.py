"""Video panoptic segmentation in the VIPSeg json format (VIPSeg-720P and OMG-Shapes videos).

Json: ``{"videos": [{"video_id", "images": [{"id", "file_name", "width", "height"}]}],
"annotations": [{"video_id", "annotations": [{"image_id", "file_name", "segments_info"}]}],
"categories": [...]}``; PNGs (RGB-encoded segment ids) at ``<panoptic_root>/<video_id>/<file>``;
frames at ``<image_root>/<video_id>/<stem>.jpg``. A segment id identifies the same entity in
every frame of a video.

Record (one per video)::

    {"video_id", "file_names": [T], "pan_seg_file_names": [T], "image_ids": [T],
     "segments_infos": [T lists of {"id", "category_id" (contiguous), "isthing", "iscrowd",
                                   "area", ("bbox")}],
     "length": T, "height", "width"}
"""
import logging
import os
from typing import Dict, List, Optional

from .builtin_categories import VIPSEG_CATEGORIES
from .utils import (
    convert_segment_category,
    panoptic_metadata,
    register_dataset,
    require_dir,
    require_file,
)
from .validation import check_unique_ids, load_json

logger = logging.getLogger(__name__)

__all__ = ["load_video_panoptic_json", "register_video_panoptic", "get_vipseg_metadata",
           "register_all_vipseg"]

PREPARE_VIPSEG = "datasets/prepare_vipseg.py"


def load_video_panoptic_json(
    json_file: str,
    image_root: str,
    panoptic_root: str,
    meta: Dict,
    image_ext: str = ".jpg",
    prepare_hint: Optional[str] = PREPARE_VIPSEG,
) -> List[Dict]:
    require_file(json_file, "Video panoptic json", prepare_hint)
    require_dir(image_root, "Video frame directory", prepare_hint)
    require_dir(panoptic_root, "Video panoptic PNG directory", prepare_hint)
    data = load_json(json_file)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
        raise ValueError(f"{json_file}: not a video panoptic json (no 'videos' list)")
    check_unique_ids((v["video_id"] for v in data["videos"]), json_file, "video id")
    check_unique_ids((a["video_id"] for a in data.get("annotations", [])), json_file,
                     "annotations entry video id")
    anns_by_video = {a["video_id"]: a["annotations"] for a in data.get("annotations", [])}
    records = []
    no_frames = [v["video_id"] for v in data["videos"] if not v["images"]]
    if no_frames:
        logger.warning(f"{json_file}: {len(no_frames)} videos list no frame and are left out: "
                       f"{no_frames[:10]}")
    for video in data["videos"]:
        vid = video["video_id"]
        images = video["images"]
        if not images:
            continue
        check_unique_ids((img["id"] for img in images), f"{json_file} (video {vid!r})",
                         "frame id")
        frame_anns = anns_by_video.get(vid)
        if frame_anns is None:
            raise ValueError(f"{json_file}: video {vid!r} has no annotations entry")
        by_image = {a["image_id"]: a for a in frame_anns}
        orphans = set(by_image) - {img["id"] for img in images}
        if orphans:
            raise ValueError(f"{json_file}: video {vid!r} has annotations of frames not in its "
                             f"'images': {sorted(orphans, key=str)[:10]}")
        file_names, pan_files, segs, image_ids = [], [], [], []
        for img in images:
            ann = by_image.get(img["id"])
            if ann is None:
                raise ValueError(
                    f"{json_file}: video {vid!r} frame {img['id']!r} has no annotation")
            source = f"{json_file} (video {vid}, frame {img['id']})"
            stem = os.path.splitext(img["file_name"])[0]
            file_names.append(os.path.join(image_root, str(vid), stem + image_ext))
            pan_files.append(os.path.join(panoptic_root, str(vid), ann["file_name"]))
            segs.append([convert_segment_category(s, meta, source) for s in ann["segments_info"]])
            image_ids.append(img["id"])
        records.append(
            {
                "video_id": vid,
                "file_names": file_names,
                "pan_seg_file_names": pan_files,
                "segments_infos": segs,
                "image_ids": image_ids,
                "length": len(file_names),
                "height": int(images[0]["height"]),
                "width": int(images[0]["width"]),
            }
        )
    if not records:
        raise ValueError(f"{json_file} has no videos")
    require_file(records[0]["file_names"][0], "Video frame", prepare_hint)
    require_file(records[0]["pan_seg_file_names"][0], "Video panoptic PNG", prepare_hint)
    logger.info("Loaded %d panoptic videos from %s", len(records), json_file)
    return records


def register_video_panoptic(name: str, metadata: Dict, json_file: str, image_root: str,
                            panoptic_root: str, prepare_hint: Optional[str] = PREPARE_VIPSEG
                            ) -> bool:
    meta = dict(metadata)
    return register_dataset(
        name,
        lambda: load_video_panoptic_json(json_file, image_root, panoptic_root, meta,
                                         prepare_hint=prepare_hint),
        dict(meta, panoptic_json=json_file, image_root=image_root, panoptic_root=panoptic_root,
             evaluator_type="vps", ignore_label=255, label_divisor=1000),
    )


def get_vipseg_metadata() -> Dict:
    return panoptic_metadata(VIPSEG_CATEGORIES)


def register_all_vipseg(root: str, prefix: str = "") -> List[str]:
    """``{prefix}vipseg_{train,val}`` at ``<root>/VIPSeg/VIPSeg_720P`` (``images/``,
    ``panomasksRGB/``, ``panoptic_gt_VIPSeg_{split}.json``)."""
    base = os.path.join(root, "VIPSeg", "VIPSeg_720P")
    names = []
    for split in ("train", "val"):
        name = f"{prefix}vipseg_{split}"
        register_video_panoptic(
            name, get_vipseg_metadata(), os.path.join(base, f"panoptic_gt_VIPSeg_{split}.json"),
            os.path.join(base, "images"), os.path.join(base, "panomasksRGB"),
        )
        names.append(name)
    return names
