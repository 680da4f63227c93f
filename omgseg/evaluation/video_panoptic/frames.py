"""Frames as the video metrics see them, and conversions from ground truth and model outputs.

A *panoptic frame* is a pair ``(ids, segments_info)``:

* ``ids``: int array ``[H, W]``, a segment id per pixel; 0 = VOID (no segment).
* ``segments_info``: list of dicts ``{"id", "category_id", ("iscrowd"), ("area")}``, the segments
  of that frame (COCO-panoptic style). A segment id names the same entity in every frame of a
  video.

A *semantic frame* is an int label map ``[H, W]`` (class index, or the dataset's ignore label).

Model output consumed by the video evaluators, one dict per video (what ``OMGSeg`` returns for
a ``{"video": [T, 3, H, W]}`` input, with panoptic ids made stable across the video)::

    {"video_id": (optional, else the input's),
     "frames": [                                   # T dicts, in the video's frame order
        {"panoptic_seg": (ids int Tensor/ndarray [H, W] (0 or negative = void),
                          segments_info [{"id", "category_id" (contiguous), ...}]),
         "sem_seg": float Tensor [K, H, W] (scores: argmax is taken) or int label map [H, W]},
     ]}

``H, W`` are the original frame size (the ground truth's).
"""
import os
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from detectron2.data import DatasetCatalog
from panopticapi.utils import rgb2id

__all__ = [
    "PanopticFrame",
    "categories_from_metadata",
    "normalize_categories",
    "read_panoptic_png",
    "read_label_png",
    "semantic_from_panoptic",
    "video_records",
    "record_length",
    "gt_panoptic_frames",
    "gt_semantic_frames",
    "panoptic_prediction",
    "semantic_prediction",
    "video_id_of",
    "png_name",
]

PanopticFrame = Tuple[np.ndarray, List[Dict]]


def categories_from_metadata(meta) -> Dict[int, Dict]:
    """``{contiguous id: {"id", "name", "isthing" (0/1)}}`` for every class of a panoptic
    dataset's metadata (Mask2Former convention: ``stuff_classes`` lists all classes)."""
    thing_ids = set(meta.get("thing_dataset_id_to_contiguous_id", {}).values())
    return {
        i: {"id": i, "name": name, "isthing": int(i in thing_ids)}
        for i, name in enumerate(meta.stuff_classes)
    }


def normalize_categories(categories) -> Dict[int, Dict]:
    """A ``{id: {"isthing", ...}}`` dict from such a dict or from a list of category dicts."""
    if isinstance(categories, Mapping):
        return {int(k): dict(v) for k, v in categories.items()}
    return {int(c["id"]): dict(c) for c in categories}


def read_panoptic_png(path: str) -> np.ndarray:
    """Segment ids ``[H, W]`` int64 of an RGB-coded panoptic PNG (id = R + 256 G + 256^2 B)."""
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint32)
    return rgb2id(rgb).astype(np.int64)


def read_label_png(path: str) -> np.ndarray:
    """An index PNG as an int64 label map ``[H, W]``."""
    with Image.open(path) as img:
        return np.asarray(img, dtype=np.int64)


def semantic_from_panoptic(ids: np.ndarray, segments_info: Sequence[Mapping],
                           ignore_label: int) -> np.ndarray:
    """Label map ``[H, W]``: a segment's ``category_id`` on its pixels (crowd segments
    included), ``ignore_label`` on VOID and on ids that no segment lists."""
    uniq, inverse = np.unique(ids, return_inverse=True)
    category = {int(s["id"]): int(s["category_id"]) for s in segments_info}
    lut = np.array([category.get(int(u), ignore_label) for u in uniq], dtype=np.int64)
    return lut[inverse].reshape(ids.shape)


def video_records(dataset_name: str) -> Dict:
    """``{video_id: record}`` of a registered video dataset (see ``data/datasets/vipseg.py``)."""
    records = {}
    for record in DatasetCatalog.get(dataset_name):
        vid = record["video_id"]
        if vid in records:
            raise ValueError(f"dataset '{dataset_name}' lists video {vid!r} twice")
        records[vid] = record
    return records


def record_length(record: Mapping) -> int:
    """The number of frames of a video record."""
    files = record.get("sem_seg_file_names") or record.get("pan_seg_file_names")
    if files is None:
        raise KeyError(f"video record {record.get('video_id')!r} has neither "
                       f"'sem_seg_file_names' nor 'pan_seg_file_names'")
    return len(files)


def gt_panoptic_frames(record: Mapping) -> Iterator[PanopticFrame]:
    """The ground-truth panoptic frames of a video record, read one at a time."""
    for path, segments in zip(record["pan_seg_file_names"], record["segments_infos"]):
        yield read_panoptic_png(path), segments


def gt_semantic_frames(record: Mapping, ignore_label: int) -> Iterator[np.ndarray]:
    """Ground-truth label maps of a video record: its ``sem_seg_file_names`` when it has them,
    else derived from its panoptic ground truth (:func:`semantic_from_panoptic`)."""
    if record.get("sem_seg_file_names"):
        for path in record["sem_seg_file_names"]:
            yield read_label_png(path)
        return
    for ids, segments in gt_panoptic_frames(record):
        yield semantic_from_panoptic(ids, segments, ignore_label)


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def panoptic_prediction(frame_output: Mapping, where: str = "") -> PanopticFrame:
    """``frame_output["panoptic_seg"]`` as a panoptic frame: ids int64 ``[H, W]`` with negative
    ids turned into VOID (0), and only the listed segments that have pixels in this frame (what
    a per-frame ``pred.json`` written from the map holds). An id on the map that no segment
    lists raises, as the official script does."""
    if "panoptic_seg" not in frame_output:
        raise KeyError(f"{where}: a frame output has no 'panoptic_seg' "
                       f"(keys {sorted(frame_output)})")
    ids, segments_info = frame_output["panoptic_seg"]
    ids = _numpy(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{where}: panoptic ids must be an int map [H, W], got {ids.dtype} "
                         f"{tuple(ids.shape)}")
    ids = np.where(ids < 0, 0, ids).astype(np.int64)
    present = set(np.unique(ids).tolist())
    listed = {int(s["id"]) for s in segments_info}
    unlisted = sorted(present - listed - {0})
    if unlisted:
        raise KeyError(f"{where}: segment ids {unlisted[:10]} are on the panoptic map but not in "
                       f"its segments_info")
    segments = [dict(s, id=int(s["id"]), category_id=int(s["category_id"]))
                for s in segments_info if int(s["id"]) in present]
    return ids, segments


def semantic_prediction(frame_output: Mapping, num_classes: int, where: str = "") -> np.ndarray:
    """``frame_output["sem_seg"]`` as an int64 label map ``[H, W]``: the argmax over classes of
    scores ``[K, H, W]`` (as Detectron2's ``SemSegEvaluator``), or a label map ``[H, W]`` whose
    values must lie in ``[0, K)``."""
    if "sem_seg" not in frame_output:
        raise KeyError(f"{where}: a frame output has no 'sem_seg' (keys {sorted(frame_output)})")
    sem = frame_output["sem_seg"]
    if hasattr(sem, "detach"):
        sem = sem.detach().cpu()
        sem = sem.argmax(dim=0) if sem.ndim == 3 else sem
        sem = sem.numpy()
    else:
        sem = np.asarray(sem)
        sem = sem.argmax(axis=0) if sem.ndim == 3 else sem
    if sem.ndim != 2:
        raise ValueError(f"{where}: sem_seg must be scores [K, H, W] or labels [H, W], got "
                         f"shape {tuple(sem.shape)}")
    if sem.size and (sem.min() < 0 or sem.max() >= num_classes):
        raise ValueError(f"{where}: predicted labels must lie in [0, {num_classes}), got "
                         f"[{sem.min()}, {sem.max()}]")
    return sem.astype(np.int64)


def video_id_of(inp: Mapping, out: Mapping) -> object:
    """The video id of an (input, output) pair: the output's ``video_id`` or the input's."""
    vid: Optional[object] = out.get("video_id", inp.get("video_id"))
    if vid is None:
        raise KeyError("neither the input nor the output of a video names its 'video_id'")
    if "video_id" in inp and "video_id" in out and inp["video_id"] != out["video_id"]:
        raise ValueError(f"output video_id {out['video_id']!r} != input video_id "
                         f"{inp['video_id']!r}")
    return vid


def png_name(file_name: str) -> str:
    """The PNG name of a frame listed as ``file_name`` in a video json's ``images``: the same
    stem with ``.png`` (VIPSeg lists ``.png`` names already; OMG-Shapes lists ``.jpg``)."""
    return os.path.splitext(file_name)[0] + ".png"
