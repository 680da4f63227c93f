"""Segmentation and Tracking Quality (STQ) as VIPSeg's ``ClipPanoFCN/eval_stq_vspw.py`` computes
it with ``segmentation_and_tracking_quality.py`` (deeplab2's numpy ``STQuality``).

Encoding (``eval_stq_vspw.py``, latest version; an older version painted the prediction with
the ground-truth PNG, ``prediction_semantic[pan_gt==id_]``, a bug fixed upstream):

* per video, every segment id gets an instance number in order of first listing in the
  ``segments_info`` of its frames, **starting at 0** (stuff segments included), separately for
  the ground truth and the prediction;
* per pixel ``label = (category_id << 16) + instance``; a pixel whose id no segment lists gets
  ``(ignore << 16) + 255``. Official constants: 124 classes, ignore 255, bit shift 16, offset
  2^24; here ``num_classes`` / ``ignore_label`` are the dataset's.

Metric (``STQuality``, the version with ``np.bool`` and integer counts that VIPSeg ships):

* AQ, things only: ground-truth pixels of a thing class with instance 0 are *crowd* and are
  removed from both the ground truth and the prediction (so the thing segment listed first in a
  video is crowd). Per video: ``sum over gt tubes g of 1/|g| * sum over pred tubes p of
  TPA(p, g) * IoU(p, g)`` (tubes: thing labels, class-agnostic association); AQ = the sum over
  videos divided by the **total** number of gt tubes (pooled, not a mean of per-video AQ).
* IoU: a ``(K+1) x (K+1)`` confusion matrix (rows = gt, columns = prediction, the ignore label
  mapped to index K when it is > K) summed over all frames of all videos, the ignore *row*
  zeroed; mean of ``TP / (TP + FP + FN)`` over the entries with a non-zero union (the ignore
  column counts: predicting VOID on labelled pixels adds a class with IoU 0).
* ``STQ = sqrt(AQ * IoU)``. Reported x100 as ``STQ``, ``AQ`` and ``SQ`` (the segmentation term,
  printed ``IoU`` by the official script).

The official script crashes on numpy 1.24-1.26 (``np.bool``); the numbers are the ones it gives
where it runs.
"""
import math
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

import numpy as np

from .frames import PanopticFrame

__all__ = ["BIT_SHIFT", "STQVideo", "confusion_size", "stq_summary", "compute_stq", "thing_ids_of"]

BIT_SHIFT = 16
_BIT_MASK = (1 << BIT_SHIFT) - 1
_UNLISTED_INSTANCE = 255
_EPSILON = 1e-15


def _add_counts(stats: Dict[int, int], values: np.ndarray) -> None:
    """deeplab2's ``_update_dict_stats``: pixel counts per value, first-seen order kept."""
    ids, counts = np.unique(values, return_counts=True)
    for idx, count in zip(ids.tolist(), counts.tolist()):
        stats[idx] = stats.get(idx, 0) + count


class STQVideo:
    """The STQ state of one video (one ``sequence_id`` of ``STQuality``), fed frame by frame.

    Args:
        num_classes: K; category ids are in ``[0, K)``.
        thing_ids: the category ids of thing classes.
        ignore_label: the label of unlisted / VOID pixels (official: 255).
    """

    def __init__(self, num_classes: int, thing_ids: Iterable[int], ignore_label: int):
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.things = np.asarray(sorted(set(int(t) for t in thing_ids)), dtype=np.int64)
        self.size = confusion_size(num_classes, ignore_label)
        self.confusion = np.zeros((self.size, self.size), dtype=np.int64)  # rows = gt
        self.gt_tubes: Dict[int, int] = {}
        self.pred_tubes: Dict[int, int] = {}
        self.intersections: Dict[Tuple[int, int], int] = {}
        self._gt_numbers: Dict[int, int] = {}
        self._pred_numbers: Dict[int, int] = {}
        self.num_frames = 0

    def encode(self, frame: PanopticFrame, numbers: Dict[int, int]) -> np.ndarray:
        """``(category << 16) + instance`` int64 ``[H, W]`` of a panoptic frame, the instance
        numbers of the video in ``numbers`` (updated with this frame's new ids)."""
        ids, segments_info = frame
        ids = np.asarray(ids)
        category: Dict[int, int] = {}
        for el in segments_info:
            sid = int(el["id"])
            if sid not in numbers:
                numbers[sid] = len(numbers)
            category[sid] = int(el["category_id"])  # painted in listing order: the last wins
        if len(numbers) > _BIT_MASK + 1:
            raise ValueError(f"{len(numbers)} segment ids in one video: the 16-bit instance "
                             f"field of the STQ encoding holds {_BIT_MASK + 1}")
        uniq, inverse = np.unique(ids, return_inverse=True)
        lut = np.array(
            [(category[u] << BIT_SHIFT) + numbers[u] if u in category
             else (self.ignore_label << BIT_SHIFT) + _UNLISTED_INSTANCE
             for u in uniq.tolist()], dtype=np.int64)
        return lut[inverse].reshape(ids.shape)

    def _semantic(self, labels: np.ndarray, what: str) -> np.ndarray:
        sem = labels >> BIT_SHIFT
        if self.ignore_label > self.num_classes:
            sem = np.where(sem != self.ignore_label, sem, self.num_classes)
        if sem.size and (sem.min() < 0 or sem.max() >= self.size):
            bad = sorted(set(np.unique(sem[(sem < 0) | (sem >= self.size)]).tolist()))
            raise ValueError(f"{what} category ids {bad[:10]} are outside [0, "
                             f"{self.num_classes}) and are not the ignore label "
                             f"{self.ignore_label}")
        return sem

    def update(self, gt: PanopticFrame, pred: PanopticFrame) -> None:
        """``STQuality.update_state`` for one frame pair."""
        y_true = self.encode(gt, self._gt_numbers)
        y_pred = self.encode(pred, self._pred_numbers)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"prediction size {y_pred.shape} != ground truth {y_true.shape}")
        sem_true = self._semantic(y_true, "ground-truth")
        sem_pred = self._semantic(y_pred, "predicted")
        self.confusion += np.bincount(
            (sem_true * self.size + sem_pred).reshape(-1), minlength=self.size ** 2
        ).reshape(self.size, self.size)
        self.num_frames += 1

        label_mask = np.isin(sem_true, self.things)
        pred_mask = np.isin(sem_pred, self.things)
        crowd = np.logical_and((y_true & _BIT_MASK) == 0, label_mask)
        label_mask &= ~crowd
        pred_mask &= ~crowd
        _add_counts(self.pred_tubes, y_pred[pred_mask])
        _add_counts(self.gt_tubes, y_true[label_mask])
        both = label_mask & pred_mask
        key_offset = int(y_pred.max(initial=0)) + 1
        keys = y_true[both] * key_offset + y_pred[both]
        ids, counts = np.unique(keys, return_counts=True)
        for key, count in zip(ids.tolist(), counts.tolist()):
            pair = (key // key_offset, key % key_offset)
            self.intersections[pair] = self.intersections.get(pair, 0) + count

    def association(self) -> Tuple[float, int]:
        """``(sum over gt tubes of 1/|g| * sum_p TPA * IoU, number of gt tubes)``: the
        official ``outer_sum`` and ``len(ground_truth)`` of this video."""
        matches: Dict[int, List[int]] = {}
        for gt_id, pred_id in self.intersections:
            matches.setdefault(gt_id, []).append(pred_id)
        order = {p: i for i, p in enumerate(self.pred_tubes)}
        outer_sum = 0.0
        for gt_id, gt_size in self.gt_tubes.items():
            inner_sum = 0.0
            for pred_id in sorted(matches.get(gt_id, ()), key=order.__getitem__):
                tpa = self.intersections[(gt_id, pred_id)]
                fpa = self.pred_tubes[pred_id] - tpa
                fna = gt_size - tpa
                inner_sum += tpa * (tpa / (tpa + fpa + fna))
            outer_sum += 1.0 / gt_size * inner_sum
        return outer_sum, len(self.gt_tubes)


def confusion_size(num_classes: int, ignore_label: int) -> int:
    """K + 1 when the ignore label is >= K (it gets index K), else K."""
    return num_classes + 1 if ignore_label >= num_classes else num_classes


def stq_summary(associations: Sequence[Tuple[float, int]], confusion: np.ndarray,
                num_classes: int, ignore_label: int) -> Dict[str, float]:
    """``{"STQ", "AQ", "SQ"}`` x100 from the per-video ``association()`` pairs (in dataset
    order) and the confusion matrix summed over all videos (``STQuality.result``)."""
    outer = np.asarray([a for a, _ in associations], dtype=np.float64)
    tubes = np.asarray([n for _, n in associations], dtype=np.int64)
    aq = np.sum(outer) / np.maximum(np.sum(tubes), _EPSILON)

    if ignore_label >= num_classes:
        include = np.arange(num_classes)
    else:
        include = np.array([i for i in range(num_classes) if i != ignore_label])
    keep = np.zeros_like(confusion)
    keep[include, :] = 1
    conf = confusion * keep
    tp = conf.diagonal()
    unions = tp + (conf.sum(axis=0) - tp) + (conf.sum(axis=1) - tp)
    n = np.count_nonzero(unions)
    ious = tp.astype(np.double) / np.maximum(unions, _EPSILON).astype(np.double)
    iou = float(np.sum(ious) / n) if n else math.nan
    stq = float(np.sqrt(aq * iou))
    return {"STQ": 100.0 * stq, "AQ": 100.0 * float(aq), "SQ": 100.0 * iou}


def compute_stq(videos: Iterable[Tuple[Sequence[PanopticFrame], Sequence[PanopticFrame]]],
                num_classes: int, thing_ids: Iterable[int], ignore_label: int = 255
                ) -> Dict[str, float]:
    """STQ of in-memory videos: per video ``(gt_frames, pred_frames)`` of panoptic frames
    ``(ids [H, W], segments_info)`` paired by position; category ids in ``[0, num_classes)``."""
    thing_ids = list(thing_ids)
    associations = []
    confusion = np.zeros((confusion_size(num_classes, ignore_label),) * 2, dtype=np.int64)
    for index, (gt_frames, pred_frames) in enumerate(videos):
        if len(gt_frames) != len(pred_frames):
            raise ValueError(f"video {index}: {len(pred_frames)} predicted frames for "
                             f"{len(gt_frames)} ground-truth frames")
        video = STQVideo(num_classes, thing_ids, ignore_label)
        for gt, pred in zip(gt_frames, pred_frames):
            video.update(gt, pred)
        associations.append(video.association())
        confusion += video.confusion
    return stq_summary(associations, confusion, num_classes, ignore_label)


def thing_ids_of(categories: Mapping[int, Mapping]) -> List[int]:
    """The ids of the categories with ``isthing``."""
    return [int(k) for k, v in categories.items() if v.get("isthing")]
