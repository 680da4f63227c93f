"""VPQ / STQ of prediction files in the layout VIPSeg's official scripts read.

Layout (``eval_vpq_vspw.py`` / ``eval_stq_vspw.py``):

* ground truth: a json ``{"videos": [{"video_id", "images": [{"file_name", ...}]}],
  "annotations": [{"video_id", "annotations": [{"segments_info": [...]}, ...]}],
  "categories": [{"id", "isthing", ...}]}`` and RGB id PNGs at
  ``<gt_folder>/<video_id>/<png name>``;
* prediction: ``<submit_dir>/pred.json`` with the same ``annotations`` structure and PNGs at
  ``<submit_dir>/pan_pred/<video_id>/<png name>``.

Videos come in the order of the ground truth's ``videos``; a video's frames are paired **by
position** (``zip`` of the two ``annotations`` lists and of ``images``); the PNG name of frame i
is ``images[i]["file_name"]`` of the ground truth, for both PNGs (here with its extension
replaced by ``.png``: the same for VIPSeg, whose names are PNG names already). A video without
predictions raises (the official ``pred_j[video_id]``); unequal frame counts raise (its
``assert``). Category ids are the json's.
"""
import json
import os
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
from panopticapi.evaluation import PQStat

from .frames import PanopticFrame, png_name, read_panoptic_png
from .stq import STQVideo, confusion_size, stq_summary, thing_ids_of
from .vpq import VPQ_WINDOWS, panoptic_frame_stats, summarize_vpq, video_vpq_stats

__all__ = ["iter_official_videos", "compute_vpq_from_files", "compute_stq_from_files"]


def _load(path: str) -> Dict:
    with open(path) as f:
        return json.load(f)


def _pred_json_path(pred_json_file: Optional[str], submit_dir: str) -> str:
    return pred_json_file or os.path.join(submit_dir, "pred.json")


def iter_official_videos(gt_json: Dict, gt_folder: str, pred_json: Dict, pred_folder: str
                         ) -> Iterator[Tuple[object, Iterator[Tuple[PanopticFrame,
                                                                    PanopticFrame]]]]:
    """Yield ``(video_id, frames)`` per ground-truth video; ``frames`` yields the
    ``(gt_frame, pred_frame)`` pairs, reading each PNG when it is reached."""
    gt_by_video = {a["video_id"]: a["annotations"] for a in gt_json["annotations"]}
    pred_by_video = {a["video_id"]: a["annotations"] for a in pred_json["annotations"]}
    for video in gt_json["videos"]:
        vid = video["video_id"]
        if vid not in pred_by_video:
            raise KeyError(f"pred.json has no annotations for video {vid!r}")
        gt_anns, pred_anns = gt_by_video[vid], pred_by_video[vid]
        if len(gt_anns) != len(pred_anns):
            raise ValueError(f"video {vid!r}: {len(pred_anns)} predicted frames for "
                             f"{len(gt_anns)} ground-truth frames")
        names = [png_name(img["file_name"]) for img in video["images"]]

        def frames(vid=vid, gt_anns=gt_anns, pred_anns=pred_anns, names=names):
            for gt_ann, pred_ann, name in zip(gt_anns, pred_anns, names):
                gt_ids = read_panoptic_png(os.path.join(gt_folder, str(vid), name))
                pred_ids = read_panoptic_png(os.path.join(pred_folder, str(vid), name))
                yield (gt_ids, gt_ann["segments_info"]), (pred_ids, pred_ann["segments_info"])

        yield vid, frames()


def compute_vpq_from_files(gt_json_file: str, gt_folder: str, submit_dir: str,
                           pred_json_file: Optional[str] = None,
                           windows: Sequence[int] = VPQ_WINDOWS) -> Dict[str, float]:
    """VPQ (see ``vpq.py``) of ``<submit_dir>/pred.json`` + ``<submit_dir>/pan_pred/`` against
    ``gt_json_file`` + ``gt_folder``, as ``eval_vpq_vspw.py --submit_dir --truth_dir
    --pan_gt_json_file`` computes it."""
    gt_json = _load(gt_json_file)
    pred_json = _load(_pred_json_path(pred_json_file, submit_dir))
    categories = {int(c["id"]): c for c in gt_json["categories"]}
    total = {n: PQStat() for n in windows}
    for vid, frames in iter_official_videos(gt_json, gt_folder, pred_json,
                                            os.path.join(submit_dir, "pan_pred")):
        stats = [panoptic_frame_stats(g, p, categories, where=f"video {vid!r} frame {t}")
                 for t, (g, p) in enumerate(frames)]
        for n, stat in video_vpq_stats(stats, windows).items():
            total[n] += stat
    return summarize_vpq(total, categories)


def compute_stq_from_files(gt_json_file: str, gt_folder: str, submit_dir: str,
                           pred_json_file: Optional[str] = None, num_classes: Optional[int] = None,
                           ignore_label: int = 255) -> Dict[str, float]:
    """STQ (see ``stq.py``) of the same layout, as ``eval_stq_vspw.py``. ``num_classes``
    defaults to the largest category id + 1 (124 for VIPSeg, the official constant)."""
    gt_json = _load(gt_json_file)
    pred_json = _load(_pred_json_path(pred_json_file, submit_dir))
    categories = {int(c["id"]): c for c in gt_json["categories"]}
    if num_classes is None:
        num_classes = max(categories) + 1
    if ignore_label in categories:
        raise ValueError(f"ignore label {ignore_label} is a category id of {gt_json_file}")
    things = thing_ids_of(categories)
    associations = []
    confusion = None
    for _, frames in iter_official_videos(gt_json, gt_folder, pred_json,
                                          os.path.join(submit_dir, "pan_pred")):
        video = STQVideo(num_classes, things, ignore_label)
        for gt, pred in frames:
            video.update(gt, pred)
        associations.append(video.association())
        confusion = video.confusion if confusion is None else confusion + video.confusion
    if confusion is None:
        confusion = np.zeros((confusion_size(num_classes, ignore_label),) * 2, dtype=np.int64)
    return stq_summary(associations, confusion, num_classes, ignore_label)
