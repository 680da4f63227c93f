"""``VideoPanopticEvaluator``: VPQ (VIPSeg's ``eval_vpq_vspw.py``) and STQ (its
``eval_stq_vspw.py``) of a registered video panoptic dataset (metadata ``evaluator_type="vps"``,
records as ``omgseg/data/datasets/vipseg.py`` loads them).

Consumes one output dict per video (see ``frames.py``)::

    {"frames": [{"panoptic_seg": (ids int [H, W], segments_info), ...} * T]}   # + "video_id"

with panoptic ids stable across the frames of a video, contiguous ``category_id`` and ``H, W``
the original size. The input dict must carry the record's ``video_id`` (the output may instead).

Each video is scored when it is processed (its frames read and dropped one by one); what is kept
per video is its per-window ``PQStat`` and its STQ association sum, plus one confusion matrix per
worker. ``evaluate()`` gathers them on rank 0 and sums the videos in dataset order.

Results ``{"vpq": {...}}`` (x100):

* ``VPQ``, ``VPQ_th``, ``VPQ_st``: means over the windows (official final VPQ);
* ``VPQ@n``, ``VPQ_th@n``, ``VPQ_st@n`` for each window length n (official: 1, 2, 4, 6, 8);
* ``STQ``, ``AQ``, ``SQ`` (the STQ segmentation term, the official script's ``IoU``).
"""
import json
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from panopticapi.evaluation import PQStat

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ...utils.file_io import atomic_output
from .frames import (
    categories_from_metadata,
    gt_panoptic_frames,
    panoptic_prediction,
    video_id_of,
    video_records,
)
from .stq import STQVideo, confusion_size, stq_summary, thing_ids_of
from .vpq import VPQ_WINDOWS, panoptic_frame_stats, summarize_vpq, video_vpq_stats, vpq_per_class

__all__ = ["VideoPanopticEvaluator", "merge_per_video", "gather_video_stats", "evaluated_videos"]

logger = logging.getLogger(__name__)

RESULTS_FILE = "video_panoptic_evaluation.json"


def merge_per_video(gathered: Sequence[Dict]) -> Dict:
    """One ``{video_id: stats}`` dict from the workers' dicts; a video seen twice raises."""
    merged: Dict = {}
    for part in gathered:
        for vid, stats in part.items():
            if vid in merged:
                raise ValueError(f"video {vid!r} was evaluated more than once")
            merged[vid] = stats
    return merged


def gather_video_stats(videos: Dict, confusion: np.ndarray, distributed: bool
                       ) -> Optional[Tuple[Dict, np.ndarray]]:
    """Per-video stats and the summed confusion matrix of all workers, on the main process
    (None on the others); unchanged when not ``distributed``."""
    if not distributed:
        return videos, confusion
    comm.synchronize()
    gathered = comm.gather(videos, dst=0)
    confusions = comm.gather(confusion, dst=0)
    if not comm.is_main_process():
        return None
    return merge_per_video(gathered), np.sum(confusions, axis=0)


def evaluated_videos(records: Dict, videos: Dict, evaluator: str, dataset_name: str,
                     note: str = "") -> List:
    """The ids of ``records`` that have stats in ``videos``, in dataset order; warns when none
    or only some were processed (``note`` ends that warning)."""
    order = [vid for vid in records if vid in videos]
    if not order:
        logger.warning("%s: no video of '%s' was processed", evaluator, dataset_name)
    elif len(order) < len(records):
        logger.warning("%s: %d of the %d videos of '%s' have no prediction; they are left out%s",
                       evaluator, len(records) - len(order), len(records), dataset_name, note)
    return order


class VideoPanopticEvaluator(DatasetEvaluator):
    """VPQ + STQ of a video panoptic dataset.

    Args:
        dataset_name: a registered dataset with ``evaluator_type="vps"`` metadata
            (``stuff_classes`` = all classes, ``thing_dataset_id_to_contiguous_id``,
            ``ignore_label``) and records with ``video_id``, ``pan_seg_file_names``,
            ``segments_infos`` (contiguous ``category_id``, ``iscrowd``, ``area``).
        output_dir: where to write ``video_panoptic_evaluation.json`` (metrics and per-class
            VPQ statistics per window), written whole or not at all; None: nothing is written.
        distributed: gather the videos of all workers in ``evaluate()``.
        windows: VPQ window lengths.
        compute_stq: also compute STQ.
    """

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None, *,
                 distributed: bool = True, windows: Sequence[int] = VPQ_WINDOWS,
                 compute_stq: bool = True):
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._distributed = distributed
        self._windows = tuple(int(n) for n in windows)
        self._compute_stq = compute_stq
        meta = MetadataCatalog.get(dataset_name)
        self._categories = categories_from_metadata(meta)
        self._num_classes = len(self._categories)
        self._thing_ids = thing_ids_of(self._categories)
        self._ignore_label = int(meta.get("ignore_label", 255))
        self._records = video_records(dataset_name)
        self.reset()

    def reset(self):
        self._videos: Dict = {}  # video_id -> {"vpq": {n: PQStat}, "aq": (sum, tubes)}
        size = confusion_size(self._num_classes, self._ignore_label)
        self._confusion = np.zeros((size, size), dtype=np.int64)

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            vid = video_id_of(inp, out)
            record = self._records.get(vid)
            if record is None:
                raise KeyError(f"video {vid!r} is not in dataset '{self._dataset_name}'")
            if vid in self._videos:
                raise ValueError(f"video {vid!r} was processed twice")
            frames = out["frames"]
            if len(frames) != len(record["pan_seg_file_names"]):
                raise ValueError(f"video {vid!r}: {len(frames)} predicted frames for "
                                 f"{len(record['pan_seg_file_names'])} ground-truth frames")
            stq = STQVideo(self._num_classes, self._thing_ids, self._ignore_label)
            stats = []
            for t, (gt, frame) in enumerate(zip(gt_panoptic_frames(record), frames)):
                where = f"video {vid!r} frame {t}"
                pred = panoptic_prediction(frame, where)
                stats.append(panoptic_frame_stats(gt, pred, self._categories, where))
                if self._compute_stq:
                    stq.update(gt, pred)
            self._videos[vid] = {"vpq": video_vpq_stats(stats, self._windows),
                                 "aq": stq.association()}
            self._confusion += stq.confusion

    def evaluate(self):
        gathered = gather_video_stats(self._videos, self._confusion, self._distributed)
        if gathered is None:
            return {}
        videos, confusion = gathered
        order = evaluated_videos(self._records, videos, "VideoPanopticEvaluator",
                                 self._dataset_name, " (the official script raises)")
        if not order:
            return {}
        total = {n: PQStat() for n in self._windows}
        for vid in order:
            for n in self._windows:
                total[n] += videos[vid]["vpq"][n]
        res = summarize_vpq(total, self._categories)
        if self._compute_stq:
            res.update(stq_summary([videos[vid]["aq"] for vid in order], confusion,
                                   self._num_classes, self._ignore_label))
        self._write(res, total, len(order))
        logger.info("Video panoptic results on %s (%d videos): %s", self._dataset_name,
                    len(order), {k: round(v, 3) for k, v in res.items()})
        return OrderedDict({"vpq": res})

    def _write(self, res: Dict, total: Dict, num_videos: int) -> None:
        if not self._output_dir:
            return
        report = {
            "dataset": self._dataset_name,
            "num_videos": num_videos,
            "metrics": res,
            "per_class": {str(n): rows for n, rows in vpq_per_class(total, self._categories)
                          .items()},
            "categories": {str(k): v for k, v in self._categories.items()},
        }
        with atomic_output(os.path.join(self._output_dir, RESULTS_FILE), suffix=".json") as tmp:
            with open(tmp, "w") as f:
                json.dump(report, f, indent=1)
