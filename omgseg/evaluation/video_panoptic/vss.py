"""Video semantic segmentation (VSS): per-frame mIoU with Detectron2's ``SemSegEvaluator``
formulas, and VSPW's video consistency VC_n.

mIoU: Detectron2's confusion matrix, ``(K+1) x (K+1)``, rows = prediction, columns = ground
truth, the ignore label moved to column K, accumulated over every frame of every video;
``SemSegEvaluator.evaluate()`` turns it into ``mIoU``, ``fwIoU``, ``mACC``, ``pACC`` and the
per-class ``IoU-<name>`` / ``ACC-<name>`` (Detectron2 >= 2022-07: a class without ground-truth
pixels is left out of the means). Boundary IoU is not computed.

VC_n, as ``VC_perclip.py`` of the official VSPW code (VSPW-dataset/VSPW_code) defines it:

* frames in the video's order; a video with ``len <= n`` frames is skipped;
* windows start at ``i in range(len - n)`` (so the last possible window, starting at
  ``len - n``, is not scored: the official loop bound);
* ``gt_common = AND_{j=1..n-1} (gt[i] == gt[i+j])``, likewise ``pred_common`` for the
  prediction; window score = ``|gt_common & pred_common| / |gt_common|`` (NaN when
  ``gt_common`` is empty). Every pixel counts, ignore-labelled ones included; the prediction is
  not compared with the ground truth, only with itself across the window;
* VC_n = ``np.nanmean`` over the windows of all videos (window-weighted), reported x100.
"""
import logging
import math
from collections import deque
from typing import Deque, Dict, Iterable, List, Sequence, Tuple

import numpy as np

from detectron2.evaluation import SemSegEvaluator

__all__ = [
    "VC_WINDOWS",
    "semseg_confusion",
    "semseg_metrics",
    "window_consistency",
    "VideoConsistency",
    "vc_summary",
    "compute_vss",
]

VC_WINDOWS = (8, 16)


def semseg_confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                     ignore_label: int) -> np.ndarray:
    """Detectron2's per-image confusion update: int64 ``[K+1, K+1]``, rows = prediction
    (``pred`` in ``[0, K)``), columns = ground truth (``ignore_label`` -> K). Values outside
    those ranges raise (Detectron2 would silently miscount them)."""
    pred = np.asarray(pred, dtype=np.int64)
    gt = np.asarray(gt, dtype=np.int64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction size {pred.shape} != ground truth {gt.shape}")
    gt = np.where(gt == ignore_label, num_classes, gt)
    if gt.size and (gt.min() < 0 or gt.max() > num_classes):
        bad = sorted(set(np.unique(gt[(gt < 0) | (gt > num_classes)]).tolist()))
        raise ValueError(f"ground-truth labels {bad[:10]} are neither in [0, {num_classes}) nor "
                         f"the ignore label {ignore_label}")
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"predicted labels must lie in [0, {num_classes})")
    k1 = num_classes + 1
    return np.bincount((k1 * pred + gt).reshape(-1), minlength=k1 * k1).reshape(k1, k1)


class _ConfusionSemSegEvaluator(SemSegEvaluator):
    """Detectron2's ``SemSegEvaluator.evaluate()`` over a confusion matrix filled elsewhere.

    ``SemSegEvaluator.__init__`` indexes the per-image ground-truth files of an image dataset,
    which a video dataset does not have; this sets the attributes ``evaluate()`` reads instead.
    """

    def __init__(self, class_names: Sequence[str], ignore_label: int):  # noqa: B027
        self._logger = logging.getLogger(__name__)
        self._dataset_name = ""
        self._distributed = False
        self._output_dir = None
        self._class_names = list(class_names)
        self._num_classes = len(self._class_names)
        self._ignore_label = ignore_label
        self._compute_boundary_iou = False
        self._contiguous_id_to_dataset_id = None
        self.input_file_to_gt_file = {}
        self.reset()


def semseg_metrics(confusion: np.ndarray, class_names: Sequence[str],
                   ignore_label: int = 255) -> Dict[str, float]:
    """Detectron2's ``SemSegEvaluator`` metrics (x100) of a ``[K+1, K+1]`` confusion matrix."""
    evaluator = _ConfusionSemSegEvaluator(class_names, ignore_label)
    if evaluator._conf_matrix.shape != confusion.shape:
        raise ValueError(f"confusion matrix {confusion.shape} for {len(class_names)} classes")
    evaluator._conf_matrix = np.asarray(confusion, dtype=np.int64).copy()
    return dict(evaluator.evaluate()["sem_seg"])


def window_consistency(gts: Sequence[np.ndarray], preds: Sequence[np.ndarray]) -> float:
    """The official ``get_common`` score of one window (frames ``i .. i+n-1``)."""
    gt_common = np.ones(np.shape(gts[0]), dtype=bool)
    pred_common = np.ones(np.shape(preds[0]), dtype=bool)
    for j in range(1, len(gts)):
        gt_common &= gts[0] == gts[j]
        pred_common &= preds[0] == preds[j]
    total = int(gt_common.sum())
    if total == 0:
        return math.nan
    return int(np.logical_and(gt_common, pred_common).sum()) / total


class VideoConsistency:
    """Streaming VC_n of one video: feed its frames in order with :meth:`update`; ``scores``
    holds one value per window (``len - n`` windows, none when ``len <= n``). Keeps n frames."""

    def __init__(self, n: int):
        self.n = int(n)
        self._gts: Deque[np.ndarray] = deque(maxlen=self.n)
        self._preds: Deque[np.ndarray] = deque(maxlen=self.n)
        self.scores: List[float] = []

    def update(self, gt: np.ndarray, pred: np.ndarray) -> None:
        if np.shape(gt) != np.shape(pred):
            raise ValueError(f"prediction size {np.shape(pred)} != ground truth {np.shape(gt)}")
        if len(self._gts) == self.n:  # the window starting n frames ago has a successor frame
            self.scores.append(window_consistency(list(self._gts), list(self._preds)))
        self._gts.append(gt)
        self._preds.append(pred)


def vc_summary(scores: Sequence[float]) -> float:
    """``np.nanmean`` of all window scores, x100 (NaN when there is no scored window)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0 or np.all(np.isnan(values)):
        return math.nan
    return 100.0 * float(np.nanmean(values))


def compute_vss(videos: Iterable[Tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
                class_names: Sequence[str], ignore_label: int = 255,
                vc_windows: Sequence[int] = VC_WINDOWS) -> Dict[str, float]:
    """VSS of in-memory videos: per video ``(gt_label_maps, pred_label_maps)``, int ``[H, W]``
    each, paired by position. Returns Detectron2's ``SemSegEvaluator`` metrics plus ``VC<n>``
    for each window length, all x100."""
    num_classes = len(class_names)
    confusion = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    vc_scores: Dict[int, List[float]] = {n: [] for n in vc_windows}
    for index, (gts, preds) in enumerate(videos):
        if len(gts) != len(preds):
            raise ValueError(f"video {index}: {len(preds)} predicted frames for {len(gts)} "
                             f"ground-truth frames")
        trackers = [VideoConsistency(n) for n in vc_windows]
        for gt, pred in zip(gts, preds):
            confusion += semseg_confusion(pred, gt, num_classes, ignore_label)
            for tracker in trackers:
                tracker.update(gt, pred)
        for tracker in trackers:
            vc_scores[tracker.n].extend(tracker.scores)
    res = semseg_metrics(confusion, class_names, ignore_label)
    for n in vc_windows:
        res[f"VC{n}"] = vc_summary(vc_scores[n])
    return res
