"""Turning the ground truth of a Detectron2 dataset record into :class:`FrameTargets`.

Three record types are understood (the ``task`` of the mapped sample):

* ``panoptic``: ``pan_seg_file_name`` (COCO RGB-encoded ids) + ``segments_info``; one entity per
  non-crowd segment, identity = segment id, class = (contiguous) ``category_id``. The ids of
  ``segments_info`` and of the PNG must agree (an error names both sides otherwise). An empty
  ``segments_info`` is an all-void image (no PNG needed); it trains every query towards void.
* ``instance``: ``annotations`` in Detectron2's format (``bbox``, ``bbox_mode``, ``category_id``,
  polygon / RLE / bitmask ``segmentation``), decoded by Detectron2's
  ``annotations_to_instances``; one entity per non-crowd annotation, identity = its index.
* ``semantic``: ``sem_seg_file_name``; one entity per class present, identity = class id;
  ``ignore_label`` (255) is not a target.
"""
from collections import Counter
from typing import Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util
from panopticapi.utils import rgb2id

from detectron2.data import MetadataCatalog
from detectron2.data import detection_utils as utils

from .clip_transforms import FrameTargets
from .image_io import describe_record, read_label_image

__all__ = [
    "record_task",
    "load_frame_targets",
    "check_panoptic_ground_truth",
    "vocabulary_size",
    "TASKS",
]

TASKS = ("panoptic", "instance", "semantic")
# At most this many ids are listed in an error message.
_MAX_LISTED = 10


def record_task(dataset_dict: dict) -> str:
    """Which kind of target a record carries: panoptic, instance or semantic."""
    if "file_names" in dataset_dict:
        raise ValueError(
            f"video {dataset_dict.get('video_id')!r} of dataset "
            f"'{dataset_dict.get('dataset_name', '')}' is a video record (it lists "
            f"'file_names'): map it with VideoClipDatasetMapper (INPUT.DATASET_MAPPER_NAME "
            f"'omg_multi_task' or 'omg_video_clip')"
        )
    task = dataset_dict.get("task")
    if task in TASKS:
        return task
    if "segments_info" in dataset_dict or "pan_seg_file_name" in dataset_dict:
        return "panoptic"
    if "annotations" in dataset_dict:
        return "instance"
    if "sem_seg_file_name" in dataset_dict:
        return "semantic"
    raise ValueError(
        f"{describe_record(dataset_dict)} has no ground truth: expected one of 'segments_info' "
        f"(+ 'pan_seg_file_name'), 'annotations' or 'sem_seg_file_name'"
    )


def vocabulary_size(dataset_name: str) -> Optional[int]:
    """Number of classes of a registered dataset (len(stuff_classes), else len(thing_classes))."""
    if not dataset_name or dataset_name not in MetadataCatalog.list():
        return None
    meta = MetadataCatalog.get(dataset_name)
    for key in ("stuff_classes", "thing_classes"):
        classes = meta.get(key, None)
        if classes is not None:
            return len(classes)
    return None


def _check_class(cat, num_classes: Optional[int], dataset_dict: dict, field: str) -> int:
    try:
        cat_int = int(cat)
    except (TypeError, ValueError):
        raise ValueError(
            f"{describe_record(dataset_dict)}: non-integer category id {cat!r} in '{field}'"
        ) from None
    if cat_int < 0 or (num_classes is not None and cat_int >= num_classes):
        voc = f"[0, {num_classes})" if num_classes is not None else "non-negative ids"
        raise ValueError(
            f"{describe_record(dataset_dict)}: category id {cat_int} in '{field}' is outside the "
            f"vocabulary of dataset '{dataset_dict.get('dataset_name', '')}' ({voc})"
        )
    return cat_int


def _check_gt_size(arr: np.ndarray, image_size: Tuple[int, int], file_name: str, field: str):
    if tuple(arr.shape[:2]) != tuple(image_size):
        raise ValueError(
            f"{file_name} (record field '{field}') has size {tuple(arr.shape[:2])} (H, W) but the "
            f"image has {tuple(image_size)}"
        )


def _listed(ids) -> str:
    ids = sorted(int(i) for i in ids)
    more = f" and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else ""
    return f"{ids[:_MAX_LISTED]}{more}"


def _panoptic_targets(dataset_dict, image_size, num_classes) -> FrameTargets:
    segments = dataset_dict.get("segments_info")
    if segments is None:
        raise ValueError(
            f"{describe_record(dataset_dict)}: panoptic record without 'segments_info'"
        )
    for s in segments:  # crowd segments are checked too
        _check_class(s["category_id"], num_classes, dataset_dict, "segments_info")
    keep = [s for s in segments if not s.get("iscrowd", 0)]
    ids = np.array([int(s["id"]) for s in keep], dtype=np.int64)
    classes = np.array([int(s["category_id"]) for s in keep], dtype=np.int64)
    pan_file = dataset_dict.get("pan_seg_file_name")
    if pan_file is None:
        if segments:
            raise ValueError(
                f"{describe_record(dataset_dict)}: panoptic record with segments but without "
                f"'pan_seg_file_name'"
            )
        # An image listed without ground truth: all void.
        empty = np.zeros(tuple(image_size), dtype=np.uint8)
        return FrameTargets(ids, classes, label_map=empty, values=np.zeros((0,), np.int64))

    png_ids, inverse, shape = _read_panoptic_png(dataset_dict, image_size)
    # Compact index map: entity k -> k + 1, everything else (void, crowd) -> 0.
    lookup = np.zeros(len(png_ids), dtype=np.uint8 if len(keep) < 255 else np.int32)
    lookup[np.searchsorted(png_ids, ids)] = np.arange(1, len(keep) + 1)
    index_map = lookup[inverse.reshape(-1)].reshape(shape)
    return FrameTargets(ids, classes, label_map=index_map, values=np.arange(1, len(keep) + 1))


def _read_panoptic_png(dataset_dict, image_size) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int]]:
    """Read the record's panoptic PNG and check it against its ``segments_info`` (size, ids in
    both directions, duplicates). Returns (sorted PNG ids, inverse index, (H, W))."""
    segments = dataset_dict["segments_info"]
    pan_file = dataset_dict["pan_seg_file_name"]
    pan = read_label_image(pan_file, "pan_seg_file_name", "RGB")
    _check_gt_size(pan, image_size, pan_file, "pan_seg_file_name")
    png_ids, inverse = np.unique(rgb2id(pan.astype(np.int64)), return_inverse=True)
    json_ids = [int(s["id"]) for s in segments]
    duplicated = {i for i, n in Counter(json_ids).items() if n > 1}
    missing = set(json_ids) - set(png_ids.tolist())
    unlisted = set(png_ids.tolist()) - set(json_ids) - {0}
    if duplicated or missing or unlisted:
        problems = []
        if duplicated:
            problems.append(f"segment ids listed twice in 'segments_info': {_listed(duplicated)}")
        if missing:
            problems.append(f"ids in 'segments_info' absent from the PNG: {_listed(missing)}")
        if unlisted:
            problems.append(f"non-zero ids in the PNG absent from 'segments_info': "
                            f"{_listed(unlisted)}")
        raise ValueError(
            f"{pan_file} (record field 'pan_seg_file_name') does not match the 'segments_info' of "
            f"{describe_record(dataset_dict)}: " + "; ".join(problems)
        )
    return png_ids, inverse, tuple(pan.shape[:2])


def check_panoptic_ground_truth(dataset_dict: dict, image_size: Tuple[int, int]) -> None:
    """Raise a ValueError naming the PNG and the record when a panoptic record's PNG does not
    match its ``segments_info`` (panopticapi would otherwise skip or miscount those segments and
    ground truth scored against itself would fall below PQ 100). No-op for other records."""
    if dataset_dict.get("pan_seg_file_name") and dataset_dict.get("segments_info") is not None:
        _read_panoptic_png(dataset_dict, image_size)


def _segmentation_view(segm, h: int, w: int, where: str):
    """Validate one ``segmentation`` and put it in a form ``annotations_to_instances`` decodes:
    polygons (degenerate ones dropped), compressed RLE, or a 2-D array."""
    if isinstance(segm, list):
        polygons = [np.asarray(p, dtype=np.float64).reshape(-1) for p in segm]
        for p in polygons:
            if len(p) % 2:
                raise ValueError(f"{where}: a polygon has an odd number of coordinates ({len(p)})")
        return [p for p in polygons if len(p) >= 6]
    if isinstance(segm, dict):
        if "counts" not in segm or "size" not in segm:
            raise ValueError(f"{where}: RLE needs 'counts' and 'size'")
        if tuple(segm["size"]) != (h, w):
            raise ValueError(f"{where}: RLE size {tuple(segm['size'])} != image size {(h, w)}")
        if isinstance(segm["counts"], list):  # uncompressed RLE
            return mask_util.frPyObjects(segm, h, w)
        return segm
    if isinstance(segm, np.ndarray):
        if segm.shape != (h, w):
            raise ValueError(f"{where}: mask shape {segm.shape} != image size {(h, w)}")
        return segm != 0
    raise ValueError(f"{where}: unsupported segmentation of type {type(segm).__name__}")


def _instance_targets(dataset_dict, image_size, num_classes) -> FrameTargets:
    annos = dataset_dict.get("annotations")
    if annos is None:
        raise ValueError(f"{describe_record(dataset_dict)}: instance record without 'annotations'")
    h, w = image_size
    ids, views = [], []
    for i, anno in enumerate(annos):
        if anno.get("iscrowd", 0):
            continue
        where = f"{describe_record(dataset_dict)}, annotations[{i}]"
        for key in ("segmentation", "bbox", "bbox_mode", "category_id"):
            if key not in anno:
                raise ValueError(f"{where} has no '{key}' (Detectron2's instance format)")
        view = dict(anno, segmentation=_segmentation_view(anno["segmentation"], h, w, where))
        view["category_id"] = _check_class(anno["category_id"], num_classes, dataset_dict,
                                           "annotations")
        views.append(view)
        ids.append(i)
    if not views:
        return FrameTargets([], [], masks=np.zeros((h, w, 0), dtype=np.uint8))
    instances = utils.annotations_to_instances(views, (h, w), mask_format="bitmask")
    masks = instances.gt_masks.tensor.numpy().astype(np.uint8).transpose(1, 2, 0)
    return FrameTargets(ids, instances.gt_classes.numpy(), masks=np.ascontiguousarray(masks))


def _semantic_targets(dataset_dict, image_size, num_classes, ignore_label) -> FrameTargets:
    if "sem_seg_file_name" not in dataset_dict:
        raise ValueError(
            f"{describe_record(dataset_dict)}: semantic record without 'sem_seg_file_name'"
        )
    sem_file = dataset_dict["sem_seg_file_name"]
    sem = read_label_image(sem_file, "sem_seg_file_name", None)  # raw values (L / P / I;16)
    if sem.ndim == 3:
        if sem.shape[2] != 1:
            raise ValueError(
                f"{sem_file} (record field 'sem_seg_file_name') must be a single-channel label "
                f"image, got shape {sem.shape}"
            )
        sem = sem[:, :, 0]
    _check_gt_size(sem, image_size, sem_file, "sem_seg_file_name")
    if sem.dtype != np.uint8:
        sem = sem.astype(np.int64)
    values = np.unique(sem)
    values = values[values != ignore_label]
    for v in values:
        _check_class(v, num_classes, dataset_dict, f"sem_seg_file_name ({sem_file})")
    values = values.astype(np.int64)
    return FrameTargets(values, values, label_map=sem, values=values)


def load_frame_targets(
    dataset_dict: dict,
    image_size: Tuple[int, int],
    task: str,
    num_classes: Optional[int] = None,
    ignore_label: int = 255,
) -> FrameTargets:
    """Ground truth of one record as :class:`FrameTargets` at the original image size."""
    if task == "panoptic":
        return _panoptic_targets(dataset_dict, image_size, num_classes)
    if task == "instance":
        return _instance_targets(dataset_dict, image_size, num_classes)
    if task == "semantic":
        return _semantic_targets(dataset_dict, image_size, num_classes, ignore_label)
    raise ValueError(
        f"{describe_record(dataset_dict)}: unknown task {task!r} (expected one of {TASKS})"
    )
