"""Per-frame inference from query outputs (Mask2Former post-processing as plain functions).

Inputs of one frame: class logits ``mask_cls [Q, K+1]`` (last column = void) and mask logits
``mask_pred [Q, H, W]``. Panoptic and instance outputs are built in two steps: choose queries
from the class logits alone (``panoptic_selection``, ``instance_selection``), then build the
output from the chosen queries' masks (``panoptic_from_masks``, ``instance_from_masks``); every
full-resolution step is one vectorised pass, whatever the number of segments.
``semantic_inference`` / ``panoptic_inference`` / ``instance_inference`` chain the steps for masks
already at output resolution. ``frame_inference`` takes masks at decoder resolution and a resize
function and resizes only the masks an output uses: the chosen queries' for panoptic and instance
(about 30 and at most ``topk`` for a trained model), every query's only for the semantic sum.
For videos the caller passes the frames one at a time.
"""
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.nn import functional as F

from detectron2.structures import BitMasks, Boxes, Instances

__all__ = [
    "QuerySelection",
    "semantic_inference",
    "panoptic_selection",
    "panoptic_from_masks",
    "panoptic_inference",
    "instance_selection",
    "instance_from_masks",
    "instance_inference",
    "frame_inference",
]


class QuerySelection(NamedTuple):
    """Queries chosen for an output: ``query_ids`` long [k], their ``scores`` [k] and ``classes``
    long [k] (contiguous ids); a query may appear more than once (instance: one per class)."""

    query_ids: Tensor
    scores: Tensor
    classes: Tensor


def _semantic_from_probs(mask_cls: Tensor, mask_probs: Tensor) -> Tensor:
    """[Q, K+1] logits, [Q, H, W] mask probabilities -> [K, H, W] (one GEMM over queries)."""
    probs = F.softmax(mask_cls, dim=-1)[:, :-1]
    q, h, w = mask_probs.shape
    return torch.mm(probs.t(), mask_probs.reshape(q, h * w)).view(-1, h, w)


def semantic_inference(mask_cls: Tensor, mask_pred: Tensor) -> Tensor:
    """Per-class score maps ``[K, H, W]``.

    ``out[c] = sum_q softmax(mask_cls)[q, c] * sigmoid(mask_pred)[q]`` for the ``K`` non-void
    classes.
    """
    return _semantic_from_probs(mask_cls, mask_pred.sigmoid())


def panoptic_selection(mask_cls: Tensor, object_mask_threshold: float = 0.0) -> QuerySelection:
    """Queries that take part in panoptic segmentation, in query order: non-void top class and
    top score above ``object_mask_threshold``; ``scores`` / ``classes`` are that top class's."""
    num_classes = mask_cls.shape[-1] - 1
    scores, labels = F.softmax(mask_cls, dim=-1).max(-1)
    keep = labels.ne(num_classes) & (scores > object_mask_threshold)
    ids = keep.nonzero().squeeze(1)
    return QuerySelection(ids, scores[ids], labels[ids])


def panoptic_from_masks(
    scores: Tensor,
    classes: Tensor,
    mask_probs: Tensor,
    is_thing: Sequence[bool],
    overlap_threshold: float = 0.8,
) -> Tuple[Tensor, List[Dict]]:
    """Panoptic segmentation from the selected queries (``panoptic_selection``).

    Args:
        scores: [k] class scores; classes: [k] long contiguous ids (non-void).
        mask_probs: [k, H, W] their mask probabilities (sigmoid of the logits) at output
            resolution.
        is_thing: ``K`` flags, True for thing classes (stuff segments of a class are merged).
        overlap_threshold: drop a segment whose visible area / full area (prob >= 0.5) is below.

    Returns:
        ``panoptic_seg`` int32 [H, W] (0 = void, segments from 1) and ``segments_info``
        ``[{"id", "isthing", "category_id", "score"}]``, segment ids in selection order.
    """
    height, width = mask_probs.shape[-2:]
    panoptic_seg = torch.zeros((height, width), dtype=torch.int32, device=mask_probs.device)
    segments_info: List[Dict] = []
    k = mask_probs.shape[0]
    if k == 0:
        return panoptic_seg, segments_info
    full = mask_probs >= 0.5
    # [H, W]: the winning query (first one on ties, as argmax); max(0) is the faster reduction.
    mask_ids = (mask_probs * scores.view(-1, 1, 1)).max(0).indices
    # The areas the per-segment rules need, in one pass each: visible (pixels won), full
    # (prob >= 0.5) and kept (won and prob >= 0.5).
    kept_pixel = full.gather(0, mask_ids.unsqueeze(0))[0]
    visible_area = torch.bincount(mask_ids.flatten(), minlength=k).tolist()
    original_area = full.flatten(1).sum(1, dtype=torch.int32).tolist()
    kept_area = torch.bincount(mask_ids[kept_pixel], minlength=k).tolist()

    segment_of_query = [0] * k  # 0: the query's pixels stay void
    stuff_memory: Dict[int, int] = {}
    current_segment_id = 0
    for i, pred_class in enumerate(classes.tolist()):
        isthing = bool(is_thing[pred_class])
        if visible_area[i] == 0 or original_area[i] == 0 or kept_area[i] == 0:
            continue
        if visible_area[i] / original_area[i] < overlap_threshold:
            continue
        if not isthing and pred_class in stuff_memory:
            segment_of_query[i] = stuff_memory[pred_class]
            continue
        current_segment_id += 1
        if not isthing:
            stuff_memory[pred_class] = current_segment_id
        segment_of_query[i] = current_segment_id
        segments_info.append(
            {
                "id": current_segment_id,
                "isthing": isthing,
                "category_id": pred_class,
                "score": float(scores[i].item()),
            }
        )
    lut = torch.tensor(segment_of_query, dtype=torch.int32, device=mask_probs.device)
    panoptic_seg = torch.where(kept_pixel, lut[mask_ids], panoptic_seg)
    return panoptic_seg, segments_info


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
    _check_is_thing(is_thing, mask_cls, "is_thing")
    sel = panoptic_selection(mask_cls, object_mask_threshold)
    return panoptic_from_masks(
        sel.scores, sel.classes, mask_pred[sel.query_ids].sigmoid(), is_thing, overlap_threshold
    )


def instance_selection(
    mask_cls: Tensor, topk: int = 100, thing_mask: Optional[Sequence[bool]] = None
) -> QuerySelection:
    """The top-``topk`` (query, class) pairs by class probability (capped at ``Q * K``), in
    decreasing order; with ``thing_mask`` (``K`` flags) pairs of non-thing classes are then
    dropped (Mask2Former behaviour)."""
    num_queries, num_cls1 = mask_cls.shape
    num_classes = num_cls1 - 1
    scores = F.softmax(mask_cls, dim=-1)[:, :-1]  # [Q, K]
    k = min(int(topk), num_queries * num_classes)
    top_scores, top_indices = scores.flatten().topk(k, sorted=True)
    classes = top_indices % num_classes
    query_ids = torch.div(top_indices, num_classes, rounding_mode="floor")
    if thing_mask is not None:
        _check_is_thing(thing_mask, mask_cls, "thing_mask")
        is_thing = torch.as_tensor(list(thing_mask), dtype=torch.bool, device=mask_cls.device)
        keep = is_thing[classes]
        top_scores, classes, query_ids = top_scores[keep], classes[keep], query_ids[keep]
    return QuerySelection(query_ids, top_scores, classes)


def instance_from_masks(
    scores: Tensor,
    classes: Tensor,
    mask_logits: Tensor,
    mask_index: Optional[Tensor] = None,
    mask_probs: Optional[Tensor] = None,
) -> Instances:
    """Instances from the selected (query, class) pairs (``instance_selection``).

    Args:
        scores: [n] class probabilities; classes: [n] long.
        mask_logits: [u, H, W] mask logits at output resolution, one per distinct query.
        mask_index: [n] long, the row of ``mask_logits`` of each pair; None: row i for pair i.
        mask_probs: ``mask_logits.sigmoid()`` when already computed.

    Returns:
        ``Instances(image_size=(H, W))`` with ``pred_masks`` (bool, logit > 0), ``pred_boxes``
        (tight boxes of the masks), ``scores`` (class prob x mean mask prob inside the mask) and
        ``pred_classes``, in the order of the pairs.
    """
    height, width = mask_logits.shape[-2:]
    if mask_index is None:
        mask_index = torch.arange(mask_logits.shape[0], device=mask_logits.device)
    # Per distinct query, then expanded to the pairs.
    binary = mask_logits > 0
    inside = binary.flatten(1).to(mask_logits.dtype)
    probs = (mask_logits.sigmoid() if mask_probs is None else mask_probs).flatten(1)
    mask_scores = torch.bmm(probs.unsqueeze(1), inside.unsqueeze(2)).view(-1)
    mask_scores = mask_scores / (inside.sum(1) + 1e-6)
    boxes = BitMasks(binary).get_bounding_boxes().tensor.to(mask_logits.device)
    result = Instances((int(height), int(width)))
    result.pred_masks = binary[mask_index]
    result.pred_boxes = Boxes(boxes[mask_index])
    result.scores = scores * mask_scores[mask_index]
    result.pred_classes = classes
    return result


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
    sel = instance_selection(mask_cls, topk, thing_mask)
    ids, index = torch.unique(sel.query_ids, return_inverse=True)
    return instance_from_masks(sel.scores, sel.classes, mask_pred[ids], index)


def frame_inference(
    mask_cls: Tensor,
    mask_pred: Tensor,
    resize: Callable[[Tensor], Tensor],
    *,
    semantic: bool = True,
    panoptic: bool = True,
    instance: bool = True,
    is_thing: Optional[Sequence[bool]] = None,
    object_mask_threshold: float = 0.0,
    overlap_threshold: float = 0.8,
    topk: int = 100,
    instance_thing_mask: Optional[Sequence[bool]] = None,
) -> Dict:
    """The requested outputs of one frame, resizing only the masks they use.

    Args:
        mask_cls: [Q, K+1] class logits.
        mask_pred: [Q, h, w] mask logits at decoder resolution.
        resize: maps mask logits [k, h, w] to output resolution [k, H, W], channel by channel
            (e.g. bilinear upsampling, crop and resize).
        semantic / panoptic / instance: which outputs to compute.
        is_thing: ``K`` flags (panoptic).
        object_mask_threshold, overlap_threshold: as in ``panoptic_inference``.
        topk, instance_thing_mask: as ``topk`` / ``thing_mask`` in ``instance_inference``.

    Returns:
        dict with ``sem_seg`` [K, H, W], ``panoptic_seg`` (ids [H, W], segments_info) and
        ``instances``, as requested; the same values as the ``*_inference`` functions on
        ``resize(mask_pred)`` (the semantic sum up to float rounding).
    """
    if panoptic:
        if is_thing is None:
            raise ValueError("frame_inference(panoptic=True) needs is_thing")
        _check_is_thing(is_thing, mask_cls, "is_thing")
    empty = torch.zeros(0, dtype=torch.long, device=mask_cls.device)
    pan = panoptic_selection(mask_cls, object_mask_threshold) if panoptic else None
    ins = instance_selection(mask_cls, topk, instance_thing_mask) if instance else None
    # The masks to resize: the panoptic queries first (their block is a view), then the queries
    # only instances use.
    pan_ids = pan.query_ids if panoptic else empty
    ins_ids = torch.unique(ins.query_ids) if instance else empty
    chosen_ids = torch.cat([pan_ids, ins_ids[~torch.isin(ins_ids, pan_ids)]])
    result = {}
    if semantic:
        # The semantic sum needs every query's mask; the chosen logits are copied out before the
        # resized logits are turned into probabilities in place.
        resized = resize(mask_pred)
        chosen = resized[chosen_ids]
        probs = resized.sigmoid_()
        result["sem_seg"] = _semantic_from_probs(mask_cls, probs)
        chosen_probs = probs[chosen_ids]
        del resized, probs
    else:
        chosen = resize(mask_pred[chosen_ids])
        chosen_probs = chosen.sigmoid()
    if panoptic:
        result["panoptic_seg"] = panoptic_from_masks(
            pan.scores, pan.classes, chosen_probs[: len(pan_ids)], is_thing, overlap_threshold
        )
    if instance:
        row_of_query = torch.full_like(mask_cls[:, 0], -1, dtype=torch.long)
        row_of_query[chosen_ids] = torch.arange(len(chosen_ids), device=mask_cls.device)
        result["instances"] = instance_from_masks(
            ins.scores, ins.classes, chosen, row_of_query[ins.query_ids], chosen_probs
        )
    return result


def _check_is_thing(flags: Sequence[bool], mask_cls: Tensor, name: str) -> None:
    num_classes = mask_cls.shape[-1] - 1
    if len(flags) != num_classes:
        raise ValueError(f"{name} has {len(flags)} entries for {num_classes} classes")
