"""Per-frame post-processing of a video with video-level scores, as plain functions.

After association (``association.py``) query ``q`` is one track through the whole video; its
class / objectness logits are the clip averages, and frame ``t`` contributes its mask logits
only. The official ``OMGFusionHead`` is applied frame by frame with those video-level scores:

* VPS: the panoptic rule of ``postprocessing.panoptic_from_masks`` (non-void queries above the
  threshold, per-pixel argmax of score x mask probability, segments under the overlap ratio
  dropped), with a segment id per **track** so that ids are stable across frames
  (:func:`stable_segment_ids`, :func:`panoptic_frame`).
* VSS: per-frame label maps, the argmax of ``postprocessing.semantic_inference``
  (:func:`semantic_labels`).
* VIS: the top-k (query, class) pairs of the video-level class probabilities (things only), one
  tube each; per frame a binary mask (logit > 0) and a mask score (mean probability inside);
  tube score = class probability x the mean over frames of the mask scores (the official
  per-frame score averaged over frames by mmdet's ``YouTubeVISMetric``)
  (:class:`InstanceTubes`).
* VOS: the ``num_proposals`` queries of highest video-level objectness, matched to the
  first-frame objects by mask IoU in frame 0 (Hungarian), painted in every frame in increasing
  objectness so that the most confident query wins overlaps (official
  ``Mask2formerVideoMinVIS.predict`` + ``OMGFusionHead.proposal_postprocess``)
  (:func:`vos_proposal_queries`, :func:`assign_vos_objects`, :func:`paint_vos_frame`).

Shapes: Q queries, K classes (+1 void), k selected queries, H x W output size.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torch.nn import functional as F

from ..postprocessing import QuerySelection, semantic_inference

__all__ = [
    "resize_mask_logits",
    "stable_segment_ids",
    "panoptic_frame",
    "semantic_labels",
    "InstanceTubes",
    "vos_proposal_queries",
    "assign_vos_objects",
    "paint_vos_frame",
]


def resize_mask_logits(logits: Tensor, padded_size: Tuple[int, int], image_size: Tuple[int, int],
                       output_size: Optional[Tuple[int, int]] = None) -> Tensor:
    """Mask logits [k, h, w] at mask-feature resolution of a padded input -> [k, H, W]:
    bilinear to ``padded_size``, cropped to ``image_size`` (the resized, unpadded frame) and
    resized bilinearly to ``output_size`` (the original frame size; None: no resize), as the
    image path (``OMGSeg.inference_single``) and the official fusion head do."""
    x = logits
    if x.shape[0] == 0:
        size = tuple(output_size) if output_size is not None else tuple(image_size)
        return x.new_zeros((0,) + size)
    if tuple(x.shape[-2:]) != tuple(padded_size):
        x = F.interpolate(x[None], size=tuple(padded_size), mode="bilinear",
                          align_corners=False)[0]
    x = x[:, : image_size[0], : image_size[1]]
    if output_size is not None and tuple(output_size) != tuple(x.shape[-2:]):
        x = F.interpolate(x[None], size=tuple(output_size), mode="bilinear",
                          align_corners=False)[0]
    return x


def stable_segment_ids(classes: Sequence[int], is_thing: Sequence[bool]) -> List[int]:
    """The panoptic segment id of each selected query (``classes``: their class ids, in
    selection order) for the whole video: a thing query gets its rank + 1; a stuff query the id
    of the first selected query of its class (stuff of one class is one segment)."""
    ids: List[int] = []
    stuff: Dict[int, int] = {}
    for rank, c in enumerate(int(c) for c in classes):
        if is_thing[c]:
            ids.append(rank + 1)
        else:
            ids.append(stuff.setdefault(c, rank + 1))
    return ids


def panoptic_frame(scores: Tensor, classes: Tensor, mask_probs: Tensor,
                   is_thing: Sequence[bool], segment_ids: Sequence[int],
                   overlap_threshold: float = 0.8) -> Tuple[Tensor, List[Dict]]:
    """One frame's panoptic map with given segment ids (``postprocessing.panoptic_from_masks``'s
    rule, ids from :func:`stable_segment_ids`).

    Args:
        scores: [k] class scores of the selected queries; classes: [k] long (non-void).
        mask_probs: [k, H, W] their mask probabilities in this frame.
        is_thing: K flags.
        segment_ids: k ids (> 0); queries sharing an id form one segment.
        overlap_threshold: drop a query whose won area / full area (prob >= 0.5) is below.

    Returns:
        ids int32 [H, W] (0 = void) and ``segments_info`` ``[{"id", "isthing", "category_id",
        "score"}]`` of the segments present, in selection order (a stuff segment carries the
        score of its first present query).
    """
    height, width = mask_probs.shape[-2:]
    panoptic = torch.zeros((height, width), dtype=torch.int32, device=mask_probs.device)
    k = mask_probs.shape[0]
    if k == 0:
        return panoptic, []
    if len(segment_ids) != k:
        raise ValueError(f"{len(segment_ids)} segment ids for {k} selected queries")
    full = mask_probs >= 0.5
    winner = (mask_probs * scores.view(-1, 1, 1)).max(0).indices  # [H, W]
    kept_pixel = full.gather(0, winner.unsqueeze(0))[0]
    visible_area = torch.bincount(winner.flatten(), minlength=k).tolist()
    full_area = full.flatten(1).sum(1).tolist()
    kept_area = torch.bincount(winner[kept_pixel], minlength=k).tolist()
    lut = [0] * k
    segments_info: List[Dict] = []
    listed = set()
    for i, c in enumerate(classes.tolist()):
        if visible_area[i] == 0 or full_area[i] == 0 or kept_area[i] == 0:
            continue
        if visible_area[i] / full_area[i] < overlap_threshold:
            continue
        sid = int(segment_ids[i])
        lut[i] = sid
        if sid not in listed:
            listed.add(sid)
            segments_info.append({"id": sid, "isthing": bool(is_thing[c]), "category_id": int(c),
                                  "score": float(scores[i])})
    lut_t = torch.tensor(lut, dtype=torch.int32, device=mask_probs.device)
    panoptic = torch.where(kept_pixel, lut_t[winner], panoptic)
    return panoptic, segments_info


def semantic_labels(mask_cls: Tensor, mask_logits: Tensor) -> Tensor:
    """Label map int64 [H, W]: argmax over classes of ``semantic_inference(mask_cls [Q, K+1],
    mask_logits [Q, H, W])`` (per-class sums of class probability x mask probability)."""
    return semantic_inference(mask_cls, mask_logits).argmax(0)


def _encode_rles(binary: Tensor) -> List[Dict]:
    """Compressed RLEs (``counts`` as str) of bool masks [u, H, W]."""
    if binary.shape[0] == 0:
        return []
    arr = np.asfortranarray(binary.permute(1, 2, 0).cpu().numpy().astype(np.uint8))
    rles = mask_util.encode(arr)
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


class InstanceTubes:
    """Video instance tubes of selected (query, class) pairs, built one frame at a time.

    Args:
        selection: the pairs (``postprocessing.instance_selection`` on the video-level class
            logits): ``query_ids`` [n], ``scores`` [n] (class probabilities), ``classes`` [n].
        num_frames: T.

    ``queries`` are the distinct queries whose masks ``add_frame`` needs, in that order.
    """

    def __init__(self, selection: QuerySelection, num_frames: int):
        self.selection = selection
        self.num_frames = int(num_frames)
        self.queries, self._row = torch.unique(selection.query_ids.cpu(), return_inverse=True)
        self._mask_score_sum = torch.zeros(len(self.queries), dtype=torch.float64)
        self._rles: List[List[Dict]] = [[] for _ in range(len(self.queries))]
        self._frames_added = 0

    def add_frame(self, mask_logits: Tensor) -> None:
        """The next frame's mask logits [u, H, W] of ``queries`` at the output size."""
        if mask_logits.shape[0] != len(self.queries):
            raise ValueError(f"{mask_logits.shape[0]} masks for {len(self.queries)} queries")
        if self._frames_added >= self.num_frames:
            raise ValueError(f"more than the {self.num_frames} frames of the video were added")
        binary = mask_logits > 0
        inside = binary.flatten(1).to(torch.float64)
        probs = mask_logits.sigmoid().flatten(1).to(torch.float64)
        scores = (probs * inside).sum(1) / (inside.sum(1) + 1e-6)
        self._mask_score_sum += scores.cpu()
        for rles, rle in zip(self._rles, _encode_rles(binary)):
            rles.append(rle)
        self._frames_added += 1

    def result(self) -> List[Dict]:
        """``[{"score", "category_id", "segmentations": [RLE] * T}]`` in selection order:
        score = class probability x mean over frames of the mask score."""
        if self._frames_added != self.num_frames:
            raise ValueError(f"{self._frames_added} of {self.num_frames} frames were added")
        mean_mask = self._mask_score_sum / max(self.num_frames, 1)
        out = []
        scores = self.selection.scores.detach().cpu().double()
        for i, (row, c) in enumerate(zip(self._row.tolist(), self.selection.classes.tolist())):
            out.append({
                "score": float(scores[i] * mean_mask[row]),
                "category_id": int(c),
                "segmentations": list(self._rles[row]),
            })
        return out


def vos_proposal_queries(objectness: Tensor, num_proposals: int = 25) -> Tensor:
    """The ``num_proposals`` queries of highest objectness, in the official proposal order:
    increasing objectness (``proposal_postprocess`` reverses its sorted top-k). long [P]."""
    scores = objectness.detach().reshape(-1).float()
    p = min(int(num_proposals), scores.numel())
    return scores.topk(p, sorted=True).indices.flip(0)


def assign_vos_objects(proposal_masks: Tensor, object_masks: Tensor) -> List[Tuple[int, int]]:
    """Hungarian assignment of first-frame objects to proposals by maximum total mask IoU.

    Args:
        proposal_masks: bool [P, H, W] frame-0 masks of the proposals (official order).
        object_masks: bool [N, H, W] ground-truth first-frame masks.

    Returns:
        ``[(proposal row, object index)]`` sorted by proposal row (the painting order); min(P, N)
        pairs. An empty union counts as IoU 0.
    """
    if proposal_masks.shape[-2:] != object_masks.shape[-2:]:
        raise ValueError(f"proposal masks {tuple(proposal_masks.shape[-2:])} and first-frame "
                         f"masks {tuple(object_masks.shape[-2:])} differ in size")
    a = proposal_masks.flatten(1).to(torch.float64)
    b = object_masks.flatten(1).to(torch.float64)
    inter = a @ b.t()
    union = a.sum(1, keepdim=True) + b.sum(1)[None] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))
    rows, cols = linear_sum_assignment(-iou.cpu().numpy())
    return sorted(zip(rows.tolist(), cols.tolist()))


def paint_vos_frame(proposal_masks: Tensor, assignment: Sequence[Tuple[int, int]],
                    labels: Sequence[int]) -> np.ndarray:
    """Index map uint8 [H, W]: 0 = background, ``labels[obj]`` where proposal ``row`` is on, for
    each ``(row, obj)`` of ``assignment`` painted in order (a later pair wins overlaps)."""
    out = torch.zeros(proposal_masks.shape[-2:], dtype=torch.uint8, device=proposal_masks.device)
    for row, obj in assignment:
        out[proposal_masks[row]] = int(labels[obj])
    return out.cpu().numpy()
