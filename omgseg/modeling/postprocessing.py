"""Per-frame inference from query outputs (Mask2Former post-processing as plain functions).

Each function takes one frame's class logits ``mask_cls [Q, K+1]`` (last column = void) and mask
logits ``mask_pred [Q, H, W]`` (already resized to the output size by the caller). For videos the
caller passes the frames one at a time.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.nn import functional as F

from detectron2.structures import BitMasks, Instances

__all__ = ["semantic_inference", "panoptic_inference", "instance_inference"]


def semantic_inference(mask_cls: Tensor, mask_pred: Tensor) -> Tensor:
    """Per-class score maps ``[K, H, W]``.

    ``out[c] = sum_q softmax(mask_cls)[q, c] * sigmoid(mask_pred)[q]`` for the ``K`` non-void
    classes.
    """
    probs = F.softmax(mask_cls, dim=-1)[:, :-1]
    return torch.einsum("qc,qhw->chw", probs, mask_pred.sigmoid())


def panoptic_inference(
    mask_cls: Tensor,
    mask_pred: Tensor,
    is_thing: Sequence[bool],
    object_mask_threshold: float = 0.0,
    overlap_threshold: float = 0.8,
) -> Tuple[Tensor, List[Dict]]:
    """Panoptic segmentation of one frame.

    Args:
        mask_cls: ``[Q, K+1]`` class logits.
        mask_pred: ``[Q, H, W]`` mask logits.
        is_thing: ``K`` flags, True for thing classes (stuff segments of a class are merged).
        object_mask_threshold: keep non-void queries whose top score is above this.
        overlap_threshold: drop a segment whose visible area / full area (prob >= 0.5) is below.

    Returns:
        ``panoptic_seg`` int32 ``[H, W]`` (0 = void, segments from 1) and ``segments_info``:
        ``[{"id", "isthing", "category_id", "score"}]`` with contiguous category ids, as
        Detectron2's ``Visualizer.draw_panoptic_seg`` / ``COCOPanopticEvaluator`` read them.
    """
    num_classes = mask_cls.shape[-1] - 1
    if len(is_thing) != num_classes:
        raise ValueError(f"is_thing has {len(is_thing)} entries for {num_classes} classes")
    scores, labels = F.softmax(mask_cls, dim=-1).max(-1)
    mask_probs = mask_pred.sigmoid()
    keep = labels.ne(num_classes) & (scores > object_mask_threshold)
    cur_scores = scores[keep]
    cur_classes = labels[keep]
    cur_masks = mask_probs[keep]
    cur_prob_masks = cur_scores.view(-1, 1, 1) * cur_masks

    height, width = mask_pred.shape[-2:]
    panoptic_seg = torch.zeros((height, width), dtype=torch.int32, device=mask_pred.device)
    segments_info: List[Dict] = []
    if cur_masks.shape[0] == 0:
        return panoptic_seg, segments_info

    mask_ids = cur_prob_masks.argmax(0)
    current_segment_id = 0
    stuff_memory: Dict[int, int] = {}
    for k in range(cur_classes.shape[0]):
        pred_class = int(cur_classes[k].item())
        isthing = bool(is_thing[pred_class])
        full = cur_masks[k] >= 0.5
        visible = mask_ids == k
        mask_area = int(visible.sum().item())
        original_area = int(full.sum().item())
        mask = visible & full
        if mask_area == 0 or original_area == 0 or int(mask.sum().item()) == 0:
            continue
        if mask_area / original_area < overlap_threshold:
            continue
        if not isthing:
            if pred_class in stuff_memory:
                panoptic_seg[mask] = stuff_memory[pred_class]
                continue
            stuff_memory[pred_class] = current_segment_id + 1
        current_segment_id += 1
        panoptic_seg[mask] = current_segment_id
        segments_info.append(
            {
                "id": current_segment_id,
                "isthing": isthing,
                "category_id": pred_class,
                "score": float(cur_scores[k].item()),
            }
        )
    return panoptic_seg, segments_info


def instance_inference(
    mask_cls: Tensor,
    mask_pred: Tensor,
    topk: int = 100,
    thing_mask: Optional[Sequence[bool]] = None,
) -> Instances:
    """Instance segmentation of one frame from the top-k (query, class) pairs.

    Args:
        mask_cls: ``[Q, K+1]`` class logits.
        mask_pred: ``[Q, H, W]`` mask logits.
        topk: number of (query, class) pairs kept, capped at ``Q * K``.
        thing_mask: optional ``K`` flags; after top-k selection, pairs of non-thing classes are
            dropped (Mask2Former behaviour).

    Returns:
        ``Instances(image_size=(H, W))`` with ``pred_masks`` (bool, logit > 0), ``pred_boxes``
        (tight boxes of the masks), ``scores`` (class prob x mean mask prob inside the mask) and
        ``pred_classes``, ordered by decreasing class probability.
    """
    num_queries, num_cls1 = mask_cls.shape
    num_classes = num_cls1 - 1
    height, width = mask_pred.shape[-2:]
    device = mask_cls.device
    scores = F.softmax(mask_cls, dim=-1)[:, :-1]  # [Q, K]
    labels = torch.arange(num_classes, device=device).unsqueeze(0).repeat(num_queries, 1).flatten()
    k = min(int(topk), num_queries * num_classes)
    scores_per_image, topk_indices = scores.flatten().topk(k, sorted=True)
    labels_per_image = labels[topk_indices]
    query_indices = torch.div(topk_indices, num_classes, rounding_mode="floor")
    masks = mask_pred[query_indices]

    if thing_mask is not None:
        if len(thing_mask) != num_classes:
            raise ValueError(f"thing_mask has {len(thing_mask)} entries for {num_classes} classes")
        is_thing = torch.as_tensor(list(thing_mask), dtype=torch.bool, device=device)
        keep = is_thing[labels_per_image]
        scores_per_image = scores_per_image[keep]
        labels_per_image = labels_per_image[keep]
        masks = masks[keep]

    result = Instances((int(height), int(width)))
    binary = masks > 0
    mask_probs = masks.sigmoid()
    mask_scores = (mask_probs.flatten(1) * binary.flatten(1)).sum(1) / (
        binary.flatten(1).sum(1) + 1e-6
    )
    result.pred_masks = binary
    result.pred_boxes = BitMasks(binary).get_bounding_boxes().to(device)
    result.scores = scores_per_image * mask_scores
    result.pred_classes = labels_per_image
    return result
