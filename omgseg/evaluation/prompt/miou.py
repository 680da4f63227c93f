"""Interactive mIoU (COCO-SAM protocol of OMG-Seg) as a Detectron2 ``DatasetEvaluator``.

Official metric (``InsClsIoUMetric(with_score=False)``): every non-crowd segment, thing or
stuff, gets one prompt; its predicted mask (sigmoid > 0.5, at the original image size) is scored
by IoU_i = |P & G| / (|P | G| + 1e-8); mIoU is the mean over ALL segments of the dataset (not per
class, not per image). The prompts come from :class:`~omgseg.data.dataset_mappers.
PromptTestDatasetMapper` (point: distance-transform argmax -> +-3 px box; box: the segment's
tight box; scribble: a deterministic stroke, ``omgseg.data.prompts.center_scribble``), one mean
per mode. A segment whose prediction is missing counts as IoU 0 (the official metric appends a
single 0 for an image without predictions).

Results: ``{"prompt": {"mIoU_point", "mIoU_box", "mIoU_scribble" (x100, per mode evaluated),
"num_segments"}}``.
"""
import logging
from collections import OrderedDict, defaultdict
from typing import Dict, List, Sequence

import numpy as np
import torch

from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ...data.dataset_mappers.targets import load_frame_targets

__all__ = ["PromptMIoUEvaluator", "mask_iou", "summarize_prompt_ious"]

logger = logging.getLogger(__name__)


def mask_iou(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """IoU of two bool masks [H, W]: |P & G| / (|P | G| + 1e-8) (official)."""
    if pred.shape != gt.shape:
        raise ValueError(f"predicted mask {tuple(pred.shape)} and ground truth "
                         f"{tuple(gt.shape)} differ in size")
    inter = (pred & gt).sum().item()
    union = (pred | gt).sum().item()
    return float(inter / (union + 1e-8))


def summarize_prompt_ious(ious: Dict[str, Sequence[float]]) -> Dict[str, float]:
    """``{"mIoU_<mode>": 100 x mean IoU over every segment, "num_segments": n}``; modes with no
    segment are left out."""
    out: Dict[str, float] = {}
    counts = set()
    for mode, values in ious.items():
        if len(values):
            out[f"mIoU_{mode}"] = 100.0 * float(np.mean(values))
            counts.add(len(values))
    if counts:
        out["num_segments"] = float(max(counts))
    return out


class PromptMIoUEvaluator(DatasetEvaluator):
    """Interactive mIoU per prompt mode (see the module docstring).

    Inputs: the test mapper's dicts (``pan_seg_file_name``, ``segments_info``, ``height``,
    ``width``, ``prompt_segment_ids`` [P], ``prompt_modes`` [P]); outputs: the model's
    ``{"prompt_instances": Instances(pred_masks bool [P, height, width])}`` in prompt order.
    Ground truth is read from the record's panoptic PNG at the original size.
    """

    def __init__(self, dataset_name: str = "", distributed: bool = True):
        self.dataset_name = dataset_name
        self.distributed = distributed
        self.reset()

    def reset(self):
        self._ious: Dict[str, List[float]] = defaultdict(list)

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            size = (int(inp["height"]), int(inp["width"]))
            targets = load_frame_targets(inp, size, "panoptic")
            gt_masks = torch.from_numpy(targets.to_masks())
            row_of = {int(i): r for r, i in enumerate(targets.ids.tolist())}
            pred = out["prompt_instances"].pred_masks.to("cpu", torch.bool)
            seg_ids = [int(i) for i in inp["prompt_segment_ids"]]
            modes = list(inp["prompt_modes"])
            if len(seg_ids) != len(modes):
                raise ValueError(f"{inp.get('file_name')}: {len(seg_ids)} prompt segment ids "
                                 f"but {len(modes)} modes")
            for j, (seg, mode) in enumerate(zip(seg_ids, modes)):
                if seg not in row_of:
                    raise ValueError(f"{inp.get('file_name')}: prompt {j} targets segment {seg}, "
                                     "which is not a non-crowd segment of the ground truth")
                iou = mask_iou(pred[j], gt_masks[row_of[seg]]) if j < len(pred) else 0.0
                self._ious[mode].append(iou)

    def evaluate(self):
        ious = dict(self._ious)
        if self.distributed:
            comm.synchronize()
            gathered = comm.gather(ious, dst=0)
            if not comm.is_main_process():
                return {}
            ious = defaultdict(list)
            for part in gathered:
                for mode, values in part.items():
                    ious[mode].extend(values)
        summary = summarize_prompt_ious(ious)
        if not summary:
            logger.warning(f"[PromptMIoUEvaluator] no prompt was evaluated on "
                           f"'{self.dataset_name}'")
            return {}
        modes = ", ".join(f"{k} {v:.2f}" for k, v in summary.items() if k.startswith("mIoU"))
        logger.info(f"Interactive mIoU on '{self.dataset_name}' over "
                    f"{int(summary['num_segments'])} segments: {modes}")
        return OrderedDict([("prompt", summary)])
