"""``VideoPostprocessor``: a video's per-frame outputs from its mask store and video-level
scores (the functions of ``postprocess.py`` bound to one video).

Per frame it reads the frame's mask logits [Q, h, w] from the :class:`MaskStore`, resizes only
the masks an output uses to the original size (:func:`resize_mask_logits`) and applies the
task's rule with the video-level class / objectness logits. Memory per call: one frame.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ..postprocessing import instance_selection, panoptic_selection, semantic_inference
from .postprocess import (
    InstanceTubes,
    assign_vos_objects,
    paint_vos_frame,
    panoptic_frame,
    resize_mask_logits,
    stable_segment_ids,
    vos_proposal_queries,
)
from .store import MaskStore

__all__ = ["VideoGeometry", "PostprocessSettings", "VideoPostprocessor"]

# Queries resized at once for the semantic sum (bounds the [chunk, H, W] buffer).
_SEMANTIC_CHUNK = 32


@dataclass(frozen=True)
class VideoGeometry:
    """Sizes of every frame of a video: the padded model input, the resized frame inside it
    and the original size of the outputs."""

    padded_size: Tuple[int, int]
    image_size: Tuple[int, int]
    output_size: Tuple[int, int]


@dataclass(frozen=True)
class PostprocessSettings:
    """``MODEL.OMG.TEST`` values the video outputs use."""

    object_mask_threshold: float = 0.0
    overlap_threshold: float = 0.8
    topk: int = 100
    semantic_before_inference: bool = True
    num_vos_proposals: int = 25


class VideoPostprocessor:
    """Per-frame outputs of one video.

    Args:
        store: the aligned mask logits of every frame.
        mask_cls: [Q, K+1] video-level class logits; objectness: [Q, 1] logits.
        is_thing: K flags of the vocabulary.
        geometry: sizes; settings: thresholds.
        device: where resizing and the per-pixel work run.
        name: the video, for messages.
    """

    def __init__(self, store: MaskStore, mask_cls: Tensor, objectness: Tensor,
                 is_thing: Sequence[bool], geometry: VideoGeometry,
                 settings: PostprocessSettings, device: Optional[torch.device] = None,
                 name: str = "video"):
        if len(is_thing) != mask_cls.shape[-1] - 1:
            raise ValueError(f"is_thing has {len(is_thing)} flags for "
                             f"{mask_cls.shape[-1] - 1} classes")
        self.store = store
        self.device = torch.device(device or "cpu")
        self.mask_cls = mask_cls.to(self.device)
        self.objectness = objectness.to(self.device)
        self.is_thing = tuple(bool(x) for x in is_thing)
        self.geometry = geometry
        self.settings = settings
        self.name = name
        self.num_frames = store.num_frames
        self._panoptic = None
        self._vos: Optional[Tuple[Tensor, List[Tuple[int, int]], List[int]]] = None

    # ---- one frame -------------------------------------------------------------------------
    def frame_logits(self, t: int, queries: Optional[Tensor] = None,
                     original_size: bool = True) -> Tensor:
        """Frame ``t``'s mask logits [k, H, W] of ``queries`` (all when None), resized to the
        original size (``original_size=False``: the resized frame's size)."""
        logits = self.store.read(t)
        if queries is not None:
            logits = logits[queries.cpu()]
        g = self.geometry
        return resize_mask_logits(logits.to(self.device), g.padded_size, g.image_size,
                                  g.output_size if original_size else None)

    def panoptic(self, t: int) -> Tuple[Tensor, List[Dict]]:
        """Frame ``t``'s panoptic map: ids int32 [H0, W0] (CPU), stable across frames, and its
        ``segments_info``."""
        if self._panoptic is None:
            sel = panoptic_selection(self.mask_cls, self.settings.object_mask_threshold)
            ids = stable_segment_ids(sel.classes.tolist(), self.is_thing)
            self._panoptic = (sel, ids)
        sel, ids = self._panoptic
        probs = self.frame_logits(t, sel.query_ids).sigmoid_()
        pan, info = panoptic_frame(sel.scores, sel.classes, probs, self.is_thing, ids,
                                   self.settings.overlap_threshold)
        return pan.cpu(), info

    def semantic(self, t: int) -> Tensor:
        """Frame ``t``'s semantic label map int64 [H0, W0] (CPU)."""
        q = self.mask_cls.shape[0]
        if self.settings.semantic_before_inference:
            scores = None
            for s in range(0, q, _SEMANTIC_CHUNK):
                rows = torch.arange(s, min(s + _SEMANTIC_CHUNK, q))
                part = semantic_inference(self.mask_cls[rows.to(self.device)],
                                          self.frame_logits(t, rows))
                scores = part if scores is None else scores.add_(part)
        else:
            scores = semantic_inference(self.mask_cls, self.frame_logits(t, original_size=False))
            h, w = self.geometry.output_size
            if tuple(scores.shape[-2:]) != (h, w):
                scores = torch.nn.functional.interpolate(
                    scores[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        return scores.argmax(0).cpu()

    # ---- whole video -----------------------------------------------------------------------
    def video_instances(self, thing_mask: Optional[Sequence[bool]] = None,
                        progress: bool = False) -> List[Dict]:
        """YouTube-VIS tubes ``[{"score", "category_id", "segmentations": [RLE] * T}]`` of the
        top-k (query, class) pairs (things only with ``thing_mask``); one pass over frames."""
        sel = instance_selection(self.mask_cls, self.settings.topk, thing_mask)
        tubes = InstanceTubes(sel, self.num_frames)
        bar = tqdm(range(self.num_frames), desc=f"{self.name}: instance tubes", unit="frame",
                   disable=None if progress else True, leave=False)
        for t in bar:
            tubes.add_frame(self.frame_logits(t, tubes.queries))
        return tubes.result()

    @staticmethod
    def check_vos_objects(first_frame_masks, object_ids: Sequence[int],
                          output_size: Tuple[int, int], name: str = "video"
                          ) -> Tuple[Tensor, List[int]]:
        """First-frame object masks as bool [N, H0, W0] and their labels, checked: at least one
        object pixel, the original size, one id in 1..255 per mask."""
        masks = torch.as_tensor(first_frame_masks).bool()
        if masks.dim() != 3 or masks.shape[0] == 0 or not bool(masks.any()):
            raise ValueError(f"{name}: the first frame has no object to follow "
                             f"(first_frame_masks of shape {tuple(masks.shape)}, "
                             f"{int(masks.sum()) if masks.numel() else 0} pixels on)")
        if tuple(masks.shape[-2:]) != tuple(output_size):
            raise ValueError(f"{name}: first_frame_masks are {tuple(masks.shape[-2:])}, the "
                             f"video's original size is {tuple(output_size)}")
        labels = [int(i) for i in object_ids]
        if len(labels) != masks.shape[0]:
            raise ValueError(f"{name}: {len(labels)} object_ids for {masks.shape[0]} "
                             "first-frame masks")
        if any(not 0 < i < 256 for i in labels):
            raise ValueError(f"{name}: object_ids must lie in 1..255 (index-map values), "
                             f"got {labels}")
        return masks, labels

    def set_vos_objects(self, first_frame_masks, object_ids: Sequence[int]) -> None:
        """Match the first-frame objects (bool [N, H0, W0] at the original size) to the top
        ``num_vos_proposals`` queries by video-level objectness, by mask IoU in frame 0."""
        masks, labels = self.check_vos_objects(first_frame_masks, object_ids,
                                               self.geometry.output_size, self.name)
        proposals = vos_proposal_queries(self.objectness, self.settings.num_vos_proposals)
        frame0 = self.frame_logits(0, proposals) > 0
        self._vos = (proposals, assign_vos_objects(frame0, masks.to(self.device)), labels)

    def vos(self, t: int) -> np.ndarray:
        """Frame ``t``'s index map uint8 [H0, W0]: 0 = background, ``object_ids[k]`` where
        the query assigned to object k is on (the most objectness wins overlaps)."""
        if self._vos is None:
            raise RuntimeError(f"{self.name}: set_vos_objects() was not called")
        proposals, assignment, labels = self._vos
        return paint_vos_frame(self.frame_logits(t, proposals) > 0, assignment, labels)
