"""YouTube-VIS video AP, as youtubevos/cocoapi ``PythonAPI/pycocotools/ytvoseval.py`` defines it.

``ytvoseval.py`` is pycocotools' ``COCOeval`` with three changes, and so is this module (a subclass
of the official ``COCOeval``; matching, crowd-as-ignore, accumulation and summary are pycocotools'
own code):

* **video IoU**: for a detection ``d`` and a ground truth ``g`` (T per-frame masks each, ``None``
  where the object is absent), over the frames of ``zip(d, g)`` (the shorter length wins)::

      IoU = sum_t |d_t & g_t| / sum_t |d_t | g_t|

  where a frame with only one of the two adds that mask's area to the union and a frame with
  neither adds nothing; a zero total union gives IoU 0. Crowd ground truth uses the same IoU
  (no ``|d|``-denominator as in image COCO); it is ignored as in COCOeval (``ignore = iscrowd``).
* **area** of an annotation = mean of its non-null, non-zero per-frame areas (0 if none). Ground
  truth uses the json's ``areas`` field (as the official code does); results use their mask areas.
* **area ranges**: all [0, 1e5^2], small [0, 128^2], medium [128^2, 256^2], large [256^2, 1e5^2]
  (both ends inclusive, as in COCOeval); maxDets 1 / 10 / 100 per video and category.

Inputs:

* ground truth: a YouTube-VIS json (path or dict): ``videos [{id, width, height, length,
  file_names}]``, ``annotations [{id, video_id, category_id, iscrowd, segmentations: [T x (RLE |
  polygons | null)], areas: [T x (number | null)], bboxes}]``, ``categories [{id, name}]``;
* results: ``[{video_id, category_id, score, segmentations: [T x (RLE | None)]}]`` with dataset
  category ids and compressed RLEs (``counts`` str or bytes); result ids are their list index + 1.
"""
import contextlib
import copy
import io
import json
import logging
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = [
    "YTVIS_AREA_RANGES",
    "YTVIS_METRICS",
    "YTVISVideos",
    "YTVISeval",
    "frame_rle",
    "mean_frame_area",
    "video_iou",
    "ytvis_ground_truth",
    "ytvis_results",
    "evaluate_ytvis",
]

logger = logging.getLogger(__name__)

# ytvoseval.Params.setDetParams: all / small / medium / large.
YTVIS_AREA_RANGES = [[0 ** 2, 1e5 ** 2], [0 ** 2, 128 ** 2], [128 ** 2, 256 ** 2],
                     [256 ** 2, 1e5 ** 2]]
# The summary numbers reported (COCOeval.stats[0:8]); the names Mask2Former's YTVISEvaluator uses.
YTVIS_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10")


def frame_rle(segm: Any, height: int, width: int) -> Optional[Dict]:
    """One frame's segmentation as a compressed RLE, or None where the frame has none.

    ``segm``: None / [] (absent: any falsy value, as the official ``if a:``), polygons
    ``[[x0, y0, x1, y1, ...], ...]``, an uncompressed RLE (``counts`` a list) or a compressed RLE
    (returned as it is; ``counts`` str or bytes).
    """
    if not segm:
        return None
    if isinstance(segm, list):  # polygons of one object: rasterised and merged
        return mask_util.merge(mask_util.frPyObjects(segm, height, width))
    if isinstance(segm.get("counts"), list):  # uncompressed RLE
        return mask_util.frPyObjects(segm, height, width)
    return segm


def mean_frame_area(areas: Sequence[Optional[float]]) -> float:
    """Mean of the non-null, non-zero per-frame areas; 0 when there is none (``avg_area``)."""
    present = [a for a in areas if a]
    return float(np.array(present).mean()) if present else 0


def video_iou(dt_frames: Sequence[Optional[Dict]], gt_frames: Sequence[Optional[Dict]]) -> float:
    """Video IoU of two tracks (lists of per-frame compressed RLEs or None), frames paired by
    ``zip``: sum of intersections / sum of unions; 0 when the union is empty."""
    inter = 0.0
    union = 0.0
    for d, g in zip(dt_frames, gt_frames):
        if d and g:
            i = float(mask_util.area(mask_util.merge([d, g], intersect=True)))
            inter += i
            union += float(mask_util.area(d)) + float(mask_util.area(g)) - i
        elif g:
            union += float(mask_util.area(g))
        elif d:
            union += float(mask_util.area(d))
    return inter / union if union > 0 else 0.0


class YTVISVideos(COCO):
    """pycocotools' ``COCO`` index over videos: each video is one "image" (id, height, width) and
    an annotation's ``segmentation`` is its list of T per-frame segmentations.

    ``annToRLE(ann)`` gives that list as compressed RLEs / None (so that ``COCOeval._prepare``
    converts a video annotation as it converts an image one).
    """

    def __init__(self, dataset: Dict):
        super().__init__()
        self.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):
            self.createIndex()

    def annToRLE(self, ann: Dict) -> List[Optional[Dict]]:  # noqa: N802 (pycocotools' name)
        video = self.imgs[ann["image_id"]]
        return [frame_rle(s, video["height"], video["width"]) for s in ann["segmentation"]]


def _load_json(gt: Union[str, Mapping]) -> Mapping:
    if isinstance(gt, Mapping):
        return gt
    with open(gt) as f:
        return json.load(f)


def ytvis_ground_truth(gt: Union[str, Mapping]) -> YTVISVideos:
    """Index a YouTube-VIS ground-truth json (path or dict; not modified) for :class:`YTVISeval`.

    Annotation ids are kept (they must be non-zero, as for the official tool: 0 means
    "unmatched" in COCOeval). An annotation without ``areas`` gets its area from its masks.
    """
    data = _load_json(gt)
    videos = [{"id": v["id"], "height": int(v["height"]), "width": int(v["width"]),
               "length": v.get("length")} for v in data["videos"]]
    sizes = {v["id"]: (v["height"], v["width"]) for v in videos}
    annotations = []
    for ann in data.get("annotations") or []:
        segms = list(ann["segmentations"])
        if "areas" in ann:
            area = mean_frame_area(ann["areas"])
        else:
            h, w = sizes[ann["video_id"]]
            area = mean_frame_area([mask_util.area(r) if r else None
                                    for r in (frame_rle(s, h, w) for s in segms)])
        annotations.append({
            "id": ann["id"], "image_id": ann["video_id"], "video_id": ann["video_id"],
            "category_id": ann["category_id"], "iscrowd": int(ann.get("iscrowd", 0)),
            "area": area, "segmentation": segms,
        })
    return YTVISVideos({"images": videos, "annotations": annotations,
                        "categories": copy.deepcopy(list(data.get("categories") or []))})


def ytvis_results(gt: YTVISVideos, results: Sequence[Mapping]) -> YTVISVideos:
    """Index results as the official ``YTVOS.loadRes`` does: ids 1..R in list order, ``iscrowd``
    0, area = mean of the non-zero per-frame mask areas. A video id unknown to ``gt`` raises."""
    unknown = sorted({r["video_id"] for r in results} - set(gt.getImgIds()), key=str)
    if unknown:
        raise ValueError(f"YouTube-VIS results name video ids that are not in the ground truth: "
                         f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''}")
    annotations = []
    for i, r in enumerate(results):
        video = gt.imgs[r["video_id"]]
        segms = [frame_rle(s, video["height"], video["width"]) for s in r["segmentations"]]
        annotations.append({
            "id": i + 1, "image_id": r["video_id"], "video_id": r["video_id"],
            "category_id": r["category_id"], "score": float(r["score"]), "iscrowd": 0,
            "area": mean_frame_area([mask_util.area(s) if s else None for s in segms]),
            "segmentation": segms,
        })
    return YTVISVideos({"images": list(gt.dataset["images"]), "annotations": annotations,
                        "categories": copy.deepcopy(gt.dataset["categories"])})


class YTVISeval(COCOeval):
    """pycocotools' ``COCOeval`` with the video IoU and the YouTube-VIS area ranges.

    ``params.imgIds`` are video ids. Use as COCOeval: ``evaluate(); accumulate(); summarize()``;
    ``stats[0:12]`` then hold AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl
    (fractions; -1 where undefined) and ``eval["precision"]`` is [T=10, R=101, K, A=4, M=3].
    """

    def __init__(self, gt: YTVISVideos, dt: YTVISVideos):
        super().__init__(gt, dt, iouType="segm")
        self.params.areaRng = copy.deepcopy(YTVIS_AREA_RANGES)
        self.params.areaRngLbl = ["all", "small", "medium", "large"]

    def computeIoU(self, imgId, catId) -> Union[np.ndarray, List]:  # noqa: N802,N803
        """[D, G] video IoUs of the (score-sorted, maxDets[-1]-truncated) detections of one
        (video, category) against its ground truth; [] when both are empty (as COCOeval)."""
        p = self.params
        if p.useCats:
            gt = self._gts[imgId, catId]
            dt = self._dts[imgId, catId]
        else:
            gt = [g for c in p.catIds for g in self._gts[imgId, c]]
            dt = [d for c in p.catIds for d in self._dts[imgId, c]]
        if len(gt) == 0 and len(dt) == 0:
            return []
        order = np.argsort([-d["score"] for d in dt], kind="mergesort")
        dt = [dt[i] for i in order[: p.maxDets[-1]]]
        ious = np.zeros((len(dt), len(gt)))
        for i, d in enumerate(dt):
            for j, g in enumerate(gt):
                ious[i, j] = video_iou(d["segmentation"], g["segmentation"])
        return ious


def _fraction_to_percent(value: float) -> float:
    return float(value * 100) if value >= 0 else float("nan")


def evaluate_ytvis(gt: Union[str, Mapping, YTVISVideos], results: Sequence[Mapping],
                   per_category: bool = True) -> Dict[str, float]:
    """YouTube-VIS metrics ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10"}`` in
    percent (NaN where the official value is -1, i.e. no ground truth in that range), plus
    ``"AP-<category name>"`` per category when ``per_category`` and there is more than one.

    ``gt``: json path / dict (see the module docstring) or a :class:`YTVISVideos`; ``results``
    are not modified. No results: every metric is NaN (as Detectron2 / Mask2Former report it).
    """
    if not isinstance(gt, YTVISVideos):
        gt = ytvis_ground_truth(gt)
    if len(results) == 0:
        logger.warning("YouTube-VIS evaluation: no predictions; every metric is NaN")
        return {m: float("nan") for m in YTVIS_METRICS}
    evaluator = YTVISeval(gt, ytvis_results(gt, results))
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    logger.info("YouTube-VIS evaluation:\n%s", summary.getvalue())
    out = {m: _fraction_to_percent(evaluator.stats[i]) for i, m in enumerate(YTVIS_METRICS)}
    cat_ids = evaluator.params.catIds
    if per_category and len(cat_ids) > 1:
        precision = evaluator.eval["precision"]  # [T, R, K, A, M]
        for k, cat in enumerate(gt.loadCats(cat_ids)):
            p = precision[:, :, k, 0, -1]
            p = p[p > -1]
            out[f"AP-{cat['name']}"] = float(np.mean(p) * 100) if p.size else float("nan")
    return out
