"""Reading images and turning Detectron2 dataset records into :class:`FrameTargets`.

Three record types are understood (the ``task`` of the mapped sample):

* ``panoptic``: ``pan_seg_file_name`` (COCO RGB-encoded ids) + ``segments_info``; one entity per
  non-crowd segment, identity = segment id, class = (contiguous) ``category_id``.
* ``instance``: ``annotations`` with polygon / RLE / bitmask ``segmentation``; one entity per
  non-crowd annotation, identity = annotation index.
* ``semantic``: ``sem_seg_file_name``; one entity per class present, identity = class id;
  ``ignore_label`` (255) is not a target.
"""
import os
from typing import Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util
from panopticapi.utils import rgb2id
from PIL import Image

from detectron2.data import MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.structures.masks import polygons_to_bitmask

from .clip_transforms import FrameTargets

__all__ = [
    "read_image_checked",
    "record_task",
    "load_frame_targets",
    "vocabulary_size",
    "TASKS",
]

TASKS = ("panoptic", "instance", "semantic")


def _describe(dataset_dict: dict) -> str:
    return f"record {dataset_dict.get('file_name', '<no file_name>')!r}"


def _read(file_name: str, field: str, fmt: Optional[str]) -> np.ndarray:
    """read_image with errors that name the file and the record field."""
    if not isinstance(file_name, str) or not file_name:
        raise ValueError(f"Record field '{field}' must be a file path, got {file_name!r}")
    try:
        return utils.read_image(file_name, format=fmt)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"File not found: {file_name} (record field '{field}')") from e
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        if not os.path.exists(file_name):
            raise FileNotFoundError(f"File not found: {file_name} (record field '{field}')") from e
        raise ValueError(
            f"Cannot decode {file_name} (record field '{field}'): {type(e).__name__}: {e}"
        ) from e


def read_image_checked(
    dataset_dict: dict, image_format: str, field: str = "file_name"
) -> np.ndarray:
    """Read ``dataset_dict[field]`` as an HWC uint8 image in ``image_format``; check the size.

    Grayscale / RGBA / palette files come back with 3 channels for RGB / BGR formats.
    Fills ``height`` / ``width`` when the record lacks them.
    """
    if field not in dataset_dict:
        raise ValueError(f"{_describe(dataset_dict)} has no '{field}' field")
    file_name = dataset_dict[field]
    image = _read(file_name, field, image_format)
    if image.ndim == 2:
        image = image[:, :, None]
    if image_format in ("RGB", "BGR") and image.shape[2] != 3:
        raise ValueError(f"{file_name}: expected 3 channels, got shape {image.shape}")
    utils.check_image_size(dataset_dict, image)
    return image


def record_task(dataset_dict: dict) -> str:
    """Which kind of target a record carries: panoptic, instance or semantic."""
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
        f"{_describe(dataset_dict)} has no ground truth: expected one of 'segments_info' "
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
        raise ValueError(f"{_describe(dataset_dict)}: non-integer category id {cat!r} in '{field}'")
    if cat_int < 0 or (num_classes is not None and cat_int >= num_classes):
        voc = f"[0, {num_classes})" if num_classes is not None else "non-negative ids"
        raise ValueError(
            f"{_describe(dataset_dict)}: category id {cat_int} in '{field}' is outside the "
            f"vocabulary of dataset '{dataset_dict.get('dataset_name', '')}' ({voc})"
        )
    return cat_int


def _check_gt_size(arr: np.ndarray, image_size: Tuple[int, int], file_name: str, field: str):
    if tuple(arr.shape[:2]) != tuple(image_size):
        raise ValueError(
            f"{file_name} (record field '{field}') has size {tuple(arr.shape[:2])} (H, W) but the "
            f"image has {tuple(image_size)}"
        )


def _panoptic_targets(dataset_dict, image_size, num_classes) -> FrameTargets:
    segments = dataset_dict.get("segments_info")
    if segments is None:
        raise ValueError(f"{_describe(dataset_dict)}: panoptic record without 'segments_info'")
    if "pan_seg_file_name" not in dataset_dict:
        raise ValueError(f"{_describe(dataset_dict)}: panoptic record without 'pan_seg_file_name'")
    if len(segments) == 0:
        raise ValueError(
            f"{_describe(dataset_dict)}: empty 'segments_info' (panoptic file "
            f"{dataset_dict['pan_seg_file_name']})"
        )
    pan_file = dataset_dict["pan_seg_file_name"]
    pan = _read(pan_file, "pan_seg_file_name", "RGB")
    _check_gt_size(pan, image_size, pan_file, "pan_seg_file_name")
    pan_ids = rgb2id(pan.astype(np.int64))

    keep = [s for s in segments if not s.get("iscrowd", 0)]
    ids = np.array([int(s["id"]) for s in keep], dtype=np.int64)
    classes = np.array(
        [_check_class(s["category_id"], num_classes, dataset_dict, "segments_info") for s in keep],
        dtype=np.int64,
    )
    for s in segments:  # crowd segments are still checked
        _check_class(s["category_id"], num_classes, dataset_dict, "segments_info")
    # Compact index map: entity k -> k + 1, everything else (void, crowd) -> 0.
    dtype = np.uint8 if len(keep) < 255 else np.int32
    index_map = np.zeros(pan_ids.shape, dtype=dtype)
    for k, sid in enumerate(ids):
        index_map[pan_ids == sid] = k + 1
    return FrameTargets(ids, classes, label_map=index_map, values=np.arange(1, len(keep) + 1))


def _decode_segmentation(segm, h: int, w: int, dataset_dict: dict, index: int) -> np.ndarray:
    where = f"{_describe(dataset_dict)}, annotations[{index}]['segmentation']"
    if isinstance(segm, list):
        polygons = [np.asarray(p, dtype=np.float64).reshape(-1) for p in segm]
        polygons = [p for p in polygons if len(p) >= 6]
        if not polygons:
            return np.zeros((h, w), dtype=np.uint8)
        return polygons_to_bitmask(polygons, h, w).astype(np.uint8)
    if isinstance(segm, dict):
        if "counts" not in segm or "size" not in segm:
            raise ValueError(f"{where}: RLE needs 'counts' and 'size'")
        if tuple(segm["size"]) != (h, w):
            raise ValueError(f"{where}: RLE size {tuple(segm['size'])} != image size {(h, w)}")
        rle = segm
        if isinstance(segm["counts"], list):  # uncompressed RLE
            rle = mask_util.frPyObjects(segm, h, w)
        return mask_util.decode(rle).astype(np.uint8)
    if isinstance(segm, np.ndarray):
        if segm.shape != (h, w):
            raise ValueError(f"{where}: mask shape {segm.shape} != image size {(h, w)}")
        return (segm != 0).astype(np.uint8)
    raise ValueError(f"{where}: unsupported segmentation of type {type(segm).__name__}")


def _instance_targets(dataset_dict, image_size, num_classes) -> FrameTargets:
    annos = dataset_dict.get("annotations")
    if annos is None:
        raise ValueError(f"{_describe(dataset_dict)}: instance record without 'annotations'")
    h, w = image_size
    ids, classes, masks = [], [], []
    for i, anno in enumerate(annos):
        if anno.get("iscrowd", 0):
            continue
        if "segmentation" not in anno:
            raise ValueError(f"{_describe(dataset_dict)}: annotations[{i}] has no 'segmentation'")
        cat = anno.get("category_id")
        classes.append(_check_class(cat, num_classes, dataset_dict, "annotations"))
        ids.append(i)
        masks.append(_decode_segmentation(anno["segmentation"], h, w, dataset_dict, i))
    stack = np.stack(masks, axis=2) if masks else np.zeros((h, w, 0), dtype=np.uint8)
    return FrameTargets(
        np.array(ids, dtype=np.int64), np.array(classes, dtype=np.int64), masks=stack
    )


def _semantic_targets(dataset_dict, image_size, num_classes, ignore_label) -> FrameTargets:
    if "sem_seg_file_name" not in dataset_dict:
        raise ValueError(f"{_describe(dataset_dict)}: semantic record without 'sem_seg_file_name'")
    sem_file = dataset_dict["sem_seg_file_name"]
    sem = _read(sem_file, "sem_seg_file_name", None)  # raw values ("P" / "L" / "I;16" modes)
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
    raise ValueError(f"{_describe(dataset_dict)}: unknown task {task!r} (expected one of {TASKS})")
