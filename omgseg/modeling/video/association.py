"""Query association across clips and video-level scores (official ``Mask2formerVideoMinVIS``).

Each clip is decoded on its own; its queries are then put in the order of the previous clip's
(already aligned) queries by Hungarian matching on ``1 - cosine similarity`` of the final
decoder query features (official ``match_from_embeds``: the reference is the previous clip, not
a running memory). Class and objectness **logits** are averaged over clips with equal weight
per clip (official ``sum(out_cls) / num_tubes``; softmax / sigmoid come afterwards, in the
post-processing). After alignment, query ``q`` of every clip is the same track.

Shapes: Q queries, C embedding width, K+1 class logits (last = void).
"""
from typing import Optional

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torch.nn import functional as F

__all__ = ["match_embeddings", "QueryTracker"]


def match_embeddings(reference: Tensor, current: Tensor) -> np.ndarray:
    """The permutation that aligns ``current`` queries to ``reference`` queries.

    Args:
        reference: [Q, C] query features of the previous clip (aligned).
        current: [Q, C] query features of the current clip.

    Returns:
        int64 [Q] ``perm`` such that ``current[perm[j]]`` is the query matched to
        ``reference[j]`` (minimum total ``1 - cos``; scipy's Hungarian solver).
    """
    if reference.dim() != 2 or reference.shape != current.shape:
        raise ValueError(f"query features must both be [Q, C]; got {tuple(reference.shape)} and "
                         f"{tuple(current.shape)}")
    ref = F.normalize(reference.detach().float().cpu(), dim=-1)
    cur = F.normalize(current.detach().float().cpu(), dim=-1)
    cost = (1.0 - ref @ cur.t()).numpy()  # [reference, current]
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(rows), dtype=np.int64)
    perm[rows] = cols
    return perm


class QueryTracker:
    """Aligns the queries of successive clips and accumulates their video-level logits.

    ``update`` takes one clip's final class logits [Q, K+1], objectness logits [Q, 1] and query
    features [Q, C] and returns the permutation to apply to that clip's per-query outputs
    (identity for the first clip). ``mask_cls`` / ``objectness`` are the clip averages of the
    aligned logits. Memory: O(Q (K + C)), whatever the video length.
    """

    def __init__(self):
        self.num_clips = 0
        self._cls_sum: Optional[Tensor] = None
        self._obj_sum: Optional[Tensor] = None
        self._reference: Optional[Tensor] = None

    def update(self, logits: Tensor, objectness: Tensor, features: Tensor) -> np.ndarray:
        q = logits.shape[0]
        if objectness.shape[0] != q or features.shape[0] != q:
            raise ValueError(f"a clip gave {q} class rows, {objectness.shape[0]} objectness rows "
                             f"and {features.shape[0]} query features")
        if self._reference is None:
            perm = np.arange(q, dtype=np.int64)
        else:
            if self._reference.shape[0] != q:
                raise ValueError(f"clip {self.num_clips} has {q} queries, the previous clips "
                                 f"{self._reference.shape[0]}")
            perm = match_embeddings(self._reference, features)
        index = torch.as_tensor(perm, device=logits.device)
        logits = logits.detach().float()[index]
        objectness = objectness.detach().float()[index.to(objectness.device)]
        self._reference = features.detach()[index.to(features.device)]
        if self._cls_sum is None:
            self._cls_sum, self._obj_sum = logits.clone(), objectness.clone()
        else:
            self._cls_sum += logits
            self._obj_sum += objectness
        self.num_clips += 1
        return perm

    def _check(self) -> None:
        if self.num_clips == 0:
            raise RuntimeError("QueryTracker has seen no clip")

    @property
    def mask_cls(self) -> Tensor:
        """[Q, K+1] class logits averaged over the clips (aligned)."""
        self._check()
        return self._cls_sum / self.num_clips

    @property
    def objectness(self) -> Tensor:
        """[Q, 1] objectness logits averaged over the clips (aligned)."""
        self._check()
        return self._obj_sum / self.num_clips
