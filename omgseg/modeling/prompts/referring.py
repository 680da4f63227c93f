"""Referring regions across images (SEEM Fig. 6): a region prompted on a reference image selects
the regions of the same kind on a target image.

The region is encoded on the reference image as its location query's class embedding: the
``cls_proj`` output (before the text classifier) of the query, L2-normalised. On the target image
the semantic queries are decoded as usual; the queries kept by the panoptic selection (non-void
top class) are ranked by the cosine similarity of their class embeddings to the reference, and
those at or above a threshold (``MODEL.OMG.PROMPT.REFERRING_THRESHOLD``) are returned as masks,
overlaps resolved per pixel by similarity x mask probability (panoptic style).

Shape shorthand: Q queries, D CLIP text dimension, K classes, H x W output size.
"""
from typing import Dict, NamedTuple, Tuple

import torch
from torch import Tensor
from torch.nn import functional as F

from ..postprocessing import panoptic_selection

__all__ = [
    "ReferringMatches",
    "query_class_embeddings",
    "referring_selection",
    "referring_masks",
    "best_f1_threshold",
]


class ReferringMatches(NamedTuple):
    """Target queries matching a reference, best first."""

    query_ids: Tensor  # long [n]
    similarity: Tensor  # [n] cosine similarity to the reference


def query_class_embeddings(decoder, outputs: Dict, mask_features: Tensor) -> Tensor:
    """L2-normalised class embeddings [B, Q, D] of a decoder output's final queries (the input of
    its text classifier), recomputed from ``query_embeds`` and ``pred_masks`` with the mask
    features [B, T, C_m, h, w] the output was decoded on."""
    features = decoder.class_features(outputs["query_embeds"], outputs["pred_masks"],
                                      mask_features)
    return F.normalize(features, dim=-1)


def referring_selection(
    reference: Tensor,
    target_embeddings: Tensor,
    mask_cls: Tensor,
    threshold: float,
    object_mask_threshold: float = 0.0,
) -> ReferringMatches:
    """Target queries of the same kind as the reference.

    Args:
        reference: [D] or [R, D] reference embedding(s) (several: the best similarity counts).
        target_embeddings: [Q, D] normalised class embeddings of the target's queries.
        mask_cls: [Q, K+1] the target's class logits (candidates: ``panoptic_selection``).
        threshold: minimum cosine similarity.
        object_mask_threshold: as the panoptic inference.

    Returns:
        :class:`ReferringMatches` sorted by decreasing similarity.
    """
    reference = F.normalize(reference.reshape(-1, reference.shape[-1]).float(), dim=-1)
    candidates = panoptic_selection(mask_cls, object_mask_threshold).query_ids
    sim = (target_embeddings[candidates].float() @ reference.t()).amax(dim=-1)
    keep = sim >= threshold
    order = sim[keep].argsort(descending=True)
    return ReferringMatches(candidates[keep][order], sim[keep][order])


def referring_masks(
    similarity: Tensor, mask_probs: Tensor, overlap_threshold: float = 0.8
) -> Tuple[Tensor, Tensor]:
    """Non-overlapping masks of the matched queries.

    Args:
        similarity: [n] similarities, mask_probs: [n, H, W] mask probabilities of the matches.
        overlap_threshold: drop a match whose won area / full area (prob >= 0.5) is below this.

    Returns:
        (bool [n', H, W] masks, keep long [n'] indices into the matches), each pixel given to the
        match of highest similarity x probability (first on ties) where that probability >= 0.5.
    """
    n = mask_probs.shape[0]
    if n == 0:
        return torch.zeros_like(mask_probs, dtype=torch.bool), torch.zeros(0, dtype=torch.long)
    full = mask_probs >= 0.5
    winner = (mask_probs * similarity.view(-1, 1, 1)).max(0).indices
    won = (winner[None] == torch.arange(n, device=mask_probs.device).view(-1, 1, 1)) & full
    won_area = won.flatten(1).sum(1).float()
    full_area = full.flatten(1).sum(1).float()
    keep = (won_area > 0) & (won_area >= overlap_threshold * full_area)
    idx = keep.nonzero().flatten()
    return won[idx], idx


def best_f1_threshold(similarities: Tensor, same_kind: Tensor) -> Tuple[float, float]:
    """Calibrate the referring threshold on labelled pairs: the similarity cut that maximises the
    F1 of "same kind" among (reference, target query) pairs.

    Args:
        similarities: [n] cosine similarities; same_kind: bool [n] (ground truth of each pair).

    Returns:
        (threshold, F1): keep pairs with similarity >= threshold.
    """
    similarities = similarities.float().flatten()
    same_kind = same_kind.bool().flatten()
    if similarities.numel() != same_kind.numel() or similarities.numel() == 0:
        raise ValueError("need as many (non-zero) similarities as same_kind labels")
    positives = int(same_kind.sum())
    if positives == 0:
        raise ValueError("no same-kind pair: the threshold cannot be calibrated")
    order = similarities.argsort(descending=True)
    hits = same_kind[order].float().cumsum(0)
    kept = torch.arange(1, len(order) + 1, dtype=torch.float32)
    f1 = 2 * hits / (kept + positives)
    # Cut only where the next similarity is lower (equal similarities are kept together).
    sorted_sim = similarities[order]
    boundary = torch.ones_like(f1, dtype=torch.bool)
    boundary[:-1] = sorted_sim[1:] < sorted_sim[:-1]
    f1 = torch.where(boundary, f1, torch.full_like(f1, -1.0))
    best = int(f1.argmax())
    return float(sorted_sim[best]), float(f1[best])
