"""Ground truth of video records (one record per video) as per-frame :class:`FrameTargets`.

Three record kinds (the loaders in ``omgseg/data/datasets``), told apart by their fields:

* ``"instance"`` (YouTube-VIS): ``annotations`` = one list per frame of Detectron2 instance
  annotations; identity = the track ``id``; class = ``category_id`` (contiguous).
* ``"panoptic"`` (VIPSeg-style VPS): ``pan_seg_file_names`` + ``segments_infos`` per frame;
  identity = the segment id (stable within a video), things and stuff.
* ``"vos"`` (DAVIS): ``mask_file_names`` = index PNGs (k = object k, 0 background, 255 void);
  identity = k; class -1 (class-agnostic: no class loss).

Every per-frame field must have one entry per frame of ``file_names``; errors name the video and
the frame (:func:`check_video_record`, :func:`load_video_frame_targets`).
"""
from typing import Optional, Tuple

import numpy as np

from ..video_io import describe_video, frame_errors
from .clip_transforms import FrameTargets
from .image_io import read_label_image
from .targets import load_frame_targets

__all__ = [
    "VIDEO_TASKS",
    "PER_FRAME_FIELDS",
    "is_video_record",
    "video_task",
    "check_video_record",
    "load_video_frame_targets",
    "read_vos_index_png",
    "first_frame_objects",
]

VIDEO_TASKS = ("instance", "panoptic", "vos")
# Record fields that hold one entry per frame, in the order of ``file_names``.
PER_FRAME_FIELDS = ("annotations", "pan_seg_file_names", "segments_infos", "image_ids",
                    "mask_file_names")


def is_video_record(record: dict) -> bool:
    """A video record lists its frames in ``file_names`` (an image record has ``file_name``)."""
    return "file_names" in record


def video_task(record: dict) -> str:
    """``"vos"``, ``"panoptic"`` or ``"instance"`` by the record's ground-truth fields."""
    if "mask_file_names" in record:
        return "vos"
    if "segments_infos" in record or "pan_seg_file_names" in record:
        return "panoptic"
    if "annotations" in record:
        return "instance"
    raise ValueError(
        f"{describe_video(record)} has no ground truth: expected 'annotations' (YouTube-VIS), "
        f"'pan_seg_file_names' + 'segments_infos' (VIPSeg) or 'mask_file_names' (DAVIS)"
    )


def check_video_record(record: dict) -> int:
    """Check that ``file_names``, ``length`` and every per-frame field agree; return the length.

    Raises ValueError naming the video, the field and the first frame without an entry.
    """
    where = describe_video(record)
    files = record.get("file_names")
    if not isinstance(files, (list, tuple)) or not files:
        raise ValueError(f"{where}: 'file_names' must be a non-empty list of frame files, got "
                         f"{files!r:.80}")
    num = len(files)
    length = record.get("length", num)
    if int(length) != num:
        raise ValueError(f"{where}: 'length' is {length} but 'file_names' lists {num} frames")
    for field in PER_FRAME_FIELDS:
        if field not in record or record[field] is None:
            continue
        n = len(record[field])
        if n != num:
            detail = (f"frame {n} has no '{field}' entry" if n < num
                      else f"entry {num} has no frame")
            raise ValueError(f"{where}: '{field}' has {n} entries but 'file_names' lists {num} "
                             f"frames ({detail})")
    return num


def read_vos_index_png(file_name: str, image_size: Tuple[int, int]) -> np.ndarray:
    """A DAVIS index PNG [H, W] (palette / grayscale values), its size checked."""
    index = read_label_image(file_name, "mask_file_names", None)
    if index.ndim == 3:
        if index.shape[2] != 1:
            raise ValueError(f"{file_name} (record field 'mask_file_names') must be an index "
                             f"(palette or grayscale) PNG, got shape {index.shape}")
        index = index[:, :, 0]
    if tuple(index.shape) != tuple(image_size):
        raise ValueError(f"{file_name} (record field 'mask_file_names') has size "
                         f"{tuple(index.shape)} (H, W) but the frame has {tuple(image_size)}")
    return index


def _objects(index: np.ndarray, ignore_label: int) -> np.ndarray:
    values = np.unique(index)
    return values[(values != 0) & (values != ignore_label)].astype(np.int64)


def first_frame_objects(
    record: dict, image_size: Tuple[int, int], ignore_label: int = 255
) -> Tuple[np.ndarray, np.ndarray]:
    """(masks bool [N, H, W], object ids int64 [N] ascending) of a VOS record's first frame.

    Raises ValueError naming the video when frame 0 has no mask PNG or no object in it (a VOS
    video cannot be tracked without one).
    """
    where = describe_video(record)
    masks = record.get("mask_file_names") or [None]
    if masks[0] is None:
        raise ValueError(f"{where}: no mask PNG for frame 0; VOS needs the objects of the first "
                         f"frame")
    with frame_errors(where, 0, masks[0]):
        index = read_vos_index_png(masks[0], image_size)
    ids = _objects(index, ignore_label)
    if len(ids) == 0:
        raise ValueError(f"{where}: the first-frame mask {masks[0]} has no object (only "
                         f"background 0 / void {ignore_label}); a VOS video needs at least one "
                         f"object in frame 0 to track")
    return index[None] == ids[:, None, None].astype(index.dtype), ids


def load_video_frame_targets(
    record: dict,
    t: int,
    task: str,
    image_size: Tuple[int, int],
    num_classes: Optional[int] = None,
    ignore_label: int = 255,
) -> FrameTargets:
    """Targets of frame ``t`` of a video record at the frame's original size; errors name the
    video and the frame."""
    where = describe_video(record)
    with frame_errors(where, t, record["file_names"][t]):
        frame = {"file_name": record["file_names"][t],
                 "dataset_name": record.get("dataset_name", "")}
        if task == "instance":
            annos = record["annotations"][t]
            targets = load_frame_targets(dict(frame, annotations=annos), image_size, "instance",
                                         num_classes)
            missing = [int(i) for i in targets.ids if "id" not in annos[int(i)]]
            if missing:
                raise ValueError(f"annotations {missing} have no track 'id'")
            tracks = [int(annos[int(i)]["id"]) for i in targets.ids]
            return FrameTargets(tracks, targets.classes, masks=targets.masks)
        if task == "panoptic":
            frame.update(pan_seg_file_name=record["pan_seg_file_names"][t],
                         segments_info=record["segments_infos"][t])
            return load_frame_targets(frame, image_size, "panoptic", num_classes)
        if task == "vos":
            mask_file = record["mask_file_names"][t]
            if mask_file is None:
                raise ValueError("no mask PNG for this frame; VOS training needs the mask of "
                                 "every sampled frame")
            index = read_vos_index_png(mask_file, image_size)
            ids = _objects(index, ignore_label)
            return FrameTargets(ids, np.full(len(ids), -1, dtype=np.int64), label_map=index,
                                values=ids.astype(index.dtype))
    raise ValueError(f"{where}: unknown video task {task!r} (expected one of {VIDEO_TASKS})")
