"""Video Panoptic Quality (VPQ) exactly as VIPSeg's ``ClipPanoFCN/eval_vpq_vspw.py`` defines it.

Rules (quoted from the official script, ``vpq_compute_single_core`` / ``vpq_compute``):

* Windows of ``n`` frames, ``n`` in ``(1, 2, 4, 6, 8)``, slide with stride 1 over each video:
  ``for idx in range(0, len(gt_pred_set) - nframes + 1)``; a video shorter than ``n`` adds
  nothing to ``VPQ_n``.
* Inside a window an id is a tube. ``vid_gt_segms[k] = gt_segms[k]`` on the first frame of the
  window that lists ``k`` (so its ``category_id`` / ``iscrowd`` come from there), then
  ``vid_gt_segms[k]['area'] += gt_segms[k]['area']``. GT areas are the ``area`` fields of the
  ground-truth ``segments_info`` (never recounted; a frame listing an id twice sums the two);
  prediction areas are recounted from the map (``pred_segms[label]['area'] = label_cnt``).
* Prediction sanity checks, per frame: an id on the map but not listed raises (VOID = 0
  excepted), a listed id without pixels raises, an unknown ``category_id`` raises.
* Matching (panopticapi's PQ rules on tubes): a (gt, pred) pair is a candidate if the gt is not
  crowd and the categories are equal; ``union = area_p + area_g - inter - |pred ∩ VOID|``;
  TP iff ``iou > 0.5``. FN: unmatched non-crowd gt. FP: unmatched prediction unless
  ``(|pred ∩ VOID| + |pred ∩ crowd of its category|) / area_p > 0.5``; ``crowd_labels_dict``
  keeps the last crowd tube listed per category.
* ``PQStat`` summed per category over all windows of all videos; ``VPQ_n`` = mean PQ over the
  categories with ``tp + fp + fn > 0`` (All / Things / Stuff); final VPQ = mean of the five
  ``VPQ_n`` (``sum(vpq_all) / len(vpq_all)``). Values x100.

Where the official script has no number (a group with no category to average, e.g. every video
shorter than ``n``, it raises ``ZeroDivisionError``) the value here is NaN, and so is the mean
over the windows that includes it.

Per-frame statistics (pair counts and areas) are computed once per frame and summed over each
window: the same integers as ``np.unique`` over the stacked window, at a fraction of the cost.
"""
import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from panopticapi.evaluation import PQStat

from .frames import PanopticFrame, normalize_categories

__all__ = [
    "VPQ_WINDOWS",
    "FrameStats",
    "panoptic_frame_stats",
    "window_pq_stat",
    "video_vpq_stats",
    "summarize_vpq",
    "vpq_per_class",
    "compute_vpq",
]

VPQ_WINDOWS = (1, 2, 4, 6, 8)
VOID = 0
OFFSET = 256 * 256 * 256  # the official pair encoding (ids of RGB PNGs are < 2^24)


@dataclass
class FrameStats:
    """Everything VPQ needs from one (gt, pred) frame pair.

    gt:    ``{id: {"category_id", "iscrowd", "area"}}`` in listing order (area: the listed one)
    pred:  ``{id: {"category_id", "area"}}`` in listing order (area: recounted pixels)
    inter: ``{(gt id, pred id): pixels}`` over the whole frame (VOID ids included)
    """

    gt: Dict[int, Dict]
    pred: Dict[int, Dict]
    inter: Dict[Tuple[int, int], int]


def _check_ids(ids: np.ndarray, what: str) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{what} ids must be an int map [H, W], got {ids.dtype} {ids.shape}")
    if ids.size and ids.min() < 0:
        raise ValueError(f"{what} ids must be >= 0 (0 = VOID), got {ids.min()}")
    return ids


def panoptic_frame_stats(gt: PanopticFrame, pred: PanopticFrame,
                         categories: Mapping[int, Mapping], where: str = "") -> FrameStats:
    """Per-frame step 1 of the official script for one (gt, pred) frame pair.

    ``gt`` / ``pred``: ``(ids int [H, W], segments_info)``. A gt segment without ``area`` gets
    its pixel count (the official script always reads the json ``area``; with a consistent json
    the two agree).
    """
    gt_ids, gt_segments = gt
    pred_ids, pred_segments = pred
    gt_ids, pred_ids = _check_ids(gt_ids, "gt"), _check_ids(pred_ids, "pred")
    if gt_ids.shape != pred_ids.shape:
        raise ValueError(f"{where}: prediction size {pred_ids.shape} != ground truth "
                         f"{gt_ids.shape}")

    gt_segms: Dict[int, Dict] = {}
    gt_counts = None
    for el in gt_segments:
        sid = int(el["id"])
        area = el.get("area")
        if area is None:
            if gt_counts is None:
                gt_counts = dict(zip(*(a.tolist() for a in np.unique(gt_ids, return_counts=True))))
            area = gt_counts.get(sid, 0)
        if sid in gt_segms:
            gt_segms[sid]["area"] += int(area)
        else:
            gt_segms[sid] = {"category_id": int(el["category_id"]),
                             "iscrowd": int(el.get("iscrowd", 0)), "area": int(area)}

    pred_segms: Dict[int, Dict] = {}
    for el in pred_segments:
        sid = int(el["id"])
        if sid not in pred_segms:
            pred_segms[sid] = {"category_id": int(el["category_id"]), "area": 0}
    not_on_map = set(pred_segms)
    labels, counts = np.unique(pred_ids, return_counts=True)
    for label, count in zip(labels.tolist(), counts.tolist()):
        if label not in pred_segms:
            if label == VOID:
                continue
            raise KeyError(f"{where}: segment with ID {label} is presented in PNG and not "
                           f"presented in JSON.")
        pred_segms[label]["area"] = count
        not_on_map.discard(label)
        if pred_segms[label]["category_id"] not in categories:
            raise KeyError(f"{where}: segment with ID {label} has unknown category_id "
                           f"{pred_segms[label]['category_id']}.")
    if not_on_map:
        raise KeyError(f"{where}: the following segment IDs {sorted(not_on_map)} are presented "
                       f"in JSON and not presented in PNG.")

    offset = max(OFFSET, int(pred_ids.max(initial=0)) + 1)
    joint = gt_ids.astype(np.uint64) * np.uint64(offset) + pred_ids.astype(np.uint64)
    labels, counts = np.unique(joint, return_counts=True)
    inter = {(int(lab) // offset, int(lab) % offset): int(c)
             for lab, c in zip(labels.tolist(), counts.tolist())}
    return FrameStats(gt_segms, pred_segms, inter)


def _merge_tubes(per_frame: Iterable[Dict[int, Dict]]) -> Dict[int, Dict]:
    """Step 2: tube info = the first listing in the window, areas summed over the window."""
    tubes: Dict[int, Dict] = {}
    for segms in per_frame:
        for sid, info in segms.items():
            if sid in tubes:
                tubes[sid]["area"] += info["area"]
            else:
                tubes[sid] = dict(info)
    return tubes


def window_pq_stat(frames: Sequence[FrameStats], stat: Optional[PQStat] = None) -> PQStat:
    """Steps 2-4 of the official script: tube matching inside one window of frames, counted
    into ``stat`` (a new one if None; the official script counts a whole video into one)."""
    gt = _merge_tubes(f.gt for f in frames)
    pred = _merge_tubes(f.pred for f in frames)
    inter: Dict[Tuple[int, int], int] = {}
    for f in frames:
        for key, count in f.inter.items():
            inter[key] = inter.get(key, 0) + count

    stat = PQStat() if stat is None else stat
    gt_matched, pred_matched = set(), set()
    for key in sorted(inter):  # the official order: np.unique of gt * OFFSET + pred
        gt_label, pred_label = key
        if gt_label not in gt or pred_label not in pred:
            continue
        g, p = gt[gt_label], pred[pred_label]
        if g["iscrowd"] == 1 or g["category_id"] != p["category_id"]:
            continue
        intersection = inter[key]
        union = p["area"] + g["area"] - intersection - inter.get((VOID, pred_label), 0)
        iou = intersection / union
        if iou > 1.0:
            raise ValueError(f"invalid tube IoU {iou} for gt segment {gt_label}: its listed "
                             f"'area' is smaller than its pixels")
        if iou > 0.5:
            stat[g["category_id"]].tp += 1
            stat[g["category_id"]].iou += iou
            gt_matched.add(gt_label)
            pred_matched.add(pred_label)

    crowd_by_category: Dict[int, int] = {}
    for gt_label, g in gt.items():
        if gt_label in gt_matched:
            continue
        if g["iscrowd"] == 1:
            crowd_by_category[g["category_id"]] = gt_label
            continue
        stat[g["category_id"]].fn += 1

    for pred_label, p in pred.items():
        if pred_label in pred_matched:
            continue
        ignored = inter.get((VOID, pred_label), 0)
        if p["category_id"] in crowd_by_category:
            ignored += inter.get((crowd_by_category[p["category_id"]], pred_label), 0)
        if ignored / p["area"] > 0.5:
            continue
        stat[p["category_id"]].fp += 1
    return stat


def video_vpq_stats(frames: Sequence[FrameStats],
                    windows: Sequence[int] = VPQ_WINDOWS) -> Dict[int, PQStat]:
    """``{n: PQStat}`` of one video: every window of ``n`` consecutive frames (stride 1)."""
    out = {}
    for n in windows:
        stat = PQStat()
        for start in range(0, len(frames) - n + 1):
            window_pq_stat(frames[start:start + n], stat)
        out[n] = stat
    return out


def _average(stat: PQStat, categories: Mapping[int, Mapping], isthing) -> float:
    try:
        return 100.0 * stat.pq_average(categories, isthing=isthing)[0]["pq"]
    except ZeroDivisionError:  # no category with tp + fp + fn > 0: the official script raises
        return math.nan


def summarize_vpq(stats: Mapping[int, PQStat], categories) -> Dict[str, float]:
    """``VPQ``, ``VPQ_th``, ``VPQ_st`` (means over the windows) and ``VPQ@n``, ``VPQ_th@n``,
    ``VPQ_st@n`` per window ``n``, all x100."""
    categories = normalize_categories(categories)
    res: Dict[str, float] = {}
    groups = (("VPQ", None), ("VPQ_th", True), ("VPQ_st", False))
    for n, stat in stats.items():
        for name, isthing in groups:
            res[f"{name}@{n}"] = _average(stat, categories, isthing)
    final = {name: sum(res[f"{name}@{n}"] for n in stats) / len(stats) for name, _ in groups}
    return dict(final, **res)


def vpq_per_class(stats: Mapping[int, PQStat], categories) -> Dict[int, List[Dict]]:
    """``{n: [{"category_id", "tp", "fp", "fn", "iou", "pq"}]}``: the per-class table the
    official script writes to ``vpq-<k>.txt``."""
    categories = normalize_categories(categories)
    out = {}
    for n, stat in stats.items():
        rows = []
        for cat in categories:
            c = stat.pq_per_cat.get(cat)
            tp, fp, fn, iou = (c.tp, c.fp, c.fn, c.iou) if c is not None else (0, 0, 0, 0.0)
            denom = tp + 0.5 * fp + 0.5 * fn
            rows.append({"category_id": cat, "tp": tp, "fp": fp, "fn": fn, "iou": iou,
                         "pq": 100.0 * iou / denom if denom else 0.0})
        out[n] = rows
    return out


def compute_vpq(videos: Iterable[Tuple[Sequence[PanopticFrame], Sequence[PanopticFrame]]],
                categories, windows: Sequence[int] = VPQ_WINDOWS) -> Dict[str, float]:
    """VPQ of in-memory videos.

    Args:
        videos: per video ``(gt_frames, pred_frames)``, two equally long sequences of panoptic
            frames ``(ids int [H, W], segments_info)`` (see ``frames.py``), paired by position.
        categories: ``{category_id: {"isthing": 0/1}}`` or a list of category dicts with ``id``.
        windows: the window lengths (official: 1, 2, 4, 6, 8).
    Returns:
        :func:`summarize_vpq` of the statistics summed over all videos.
    """
    categories = normalize_categories(categories)
    total = {n: PQStat() for n in windows}
    for index, (gt_frames, pred_frames) in enumerate(videos):
        if len(gt_frames) != len(pred_frames):
            raise ValueError(f"video {index}: {len(pred_frames)} predicted frames for "
                             f"{len(gt_frames)} ground-truth frames")
        frames = [panoptic_frame_stats(g, p, categories, where=f"video {index} frame {t}")
                  for t, (g, p) in enumerate(zip(gt_frames, pred_frames))]
        for n, stat in video_vpq_stats(frames, windows).items():
            total[n] += stat
    return summarize_vpq(total, categories)
