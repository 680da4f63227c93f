"""``VideoSemSegEvaluator``: VSS mIoU (Detectron2's ``SemSegEvaluator`` formulas over all frames)
and VSPW's video consistency VC8 / VC16 of a registered video dataset.

Consumes one output dict per video (see ``frames.py``)::

    {"frames": [{"sem_seg": scores [K, H, W] or labels [H, W], ...} * T]}   # + "video_id"

Ground truth per frame: the record's ``sem_seg_file_names`` (index PNGs) when it has them, else
the semantic map of its panoptic ground truth (``category_id`` on segment pixels, the metadata's
``ignore_label`` elsewhere). Memory: one confusion matrix per worker, n frames per VC window
while a video is processed, one score per window afterwards.

Results ``{"vss": {...}}`` (x100): ``mIoU``, ``fwIoU``, ``mACC``, ``pACC``, ``IoU-<class>``,
``ACC-<class>`` (Detectron2's), and ``VC8``, ``VC16`` (one ``VC<n>`` per window length).
"""
import json
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator

from ...utils.file_io import atomic_output
from .frames import (
    gt_semantic_frames,
    record_length,
    semantic_prediction,
    video_id_of,
    video_records,
)
from .vps_evaluator import evaluated_videos, gather_video_stats
from .vss import VC_WINDOWS, VideoConsistency, semseg_confusion, semseg_metrics, vc_summary

__all__ = ["VideoSemSegEvaluator"]

logger = logging.getLogger(__name__)

RESULTS_FILE = "video_semseg_evaluation.json"


class VideoSemSegEvaluator(DatasetEvaluator):
    """mIoU + VC_n of a video dataset.

    Args:
        dataset_name: a registered video dataset (``stuff_classes`` = all K classes,
            ``ignore_label``; records with ``video_id`` and ``sem_seg_file_names`` or
            ``pan_seg_file_names`` + ``segments_infos``).
        output_dir: where to write ``video_semseg_evaluation.json`` (written whole or not at
            all); None: nothing is written.
        distributed: gather all workers' statistics in ``evaluate()``.
        vc_windows: the VC window lengths (VSPW: 8 and 16).
    """

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None, *,
                 distributed: bool = True, vc_windows: Sequence[int] = VC_WINDOWS):
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._distributed = distributed
        self._vc_windows = tuple(int(n) for n in vc_windows)
        meta = MetadataCatalog.get(dataset_name)
        self._class_names = list(meta.stuff_classes)
        self._num_classes = len(self._class_names)
        self._ignore_label = int(meta.get("ignore_label", 255))
        self._records = video_records(dataset_name)
        self.reset()

    def reset(self):
        k1 = self._num_classes + 1
        self._confusion = np.zeros((k1, k1), dtype=np.int64)
        self._videos: Dict = {}  # video_id -> {n: [window scores]}

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            vid = video_id_of(inp, out)
            record = self._records.get(vid)
            if record is None:
                raise KeyError(f"video {vid!r} is not in dataset '{self._dataset_name}'")
            if vid in self._videos:
                raise ValueError(f"video {vid!r} was processed twice")
            frames = out["frames"]
            if len(frames) != record_length(record):
                raise ValueError(f"video {vid!r}: {len(frames)} predicted frames for "
                                 f"{record_length(record)} ground-truth frames")
            trackers = [VideoConsistency(n) for n in self._vc_windows]
            gts = gt_semantic_frames(record, self._ignore_label)
            for t, (gt, frame) in enumerate(zip(gts, frames)):
                pred = semantic_prediction(frame, self._num_classes, f"video {vid!r} frame {t}")
                self._confusion += semseg_confusion(pred, gt, self._num_classes,
                                                    self._ignore_label)
                for tracker in trackers:
                    tracker.update(gt, pred)
            self._videos[vid] = {tracker.n: tracker.scores for tracker in trackers}

    def evaluate(self):
        gathered = gather_video_stats(self._videos, self._confusion, self._distributed)
        if gathered is None:
            return {}
        videos, confusion = gathered
        order = evaluated_videos(self._records, videos, "VideoSemSegEvaluator",
                                 self._dataset_name)
        if not order:
            return {}
        res = semseg_metrics(confusion, self._class_names, self._ignore_label)
        for n in self._vc_windows:
            scores: List[float] = []
            for vid in order:
                scores.extend(videos[vid][n])
            res[f"VC{n}"] = vc_summary(scores)
        self._write(res, len(order))
        return OrderedDict({"vss": res})

    def _write(self, res: Dict, num_videos: int) -> None:
        if not self._output_dir:
            return
        report = {"dataset": self._dataset_name, "num_videos": num_videos, "metrics": res}
        with atomic_output(os.path.join(self._output_dir, RESULTS_FILE), suffix=".json") as tmp:
            with open(tmp, "w") as f:
                json.dump(report, f, indent=1)
