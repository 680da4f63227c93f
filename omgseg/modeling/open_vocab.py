"""Open-vocabulary fusion at inference: the learned class scores fused with frozen-CLIP scores.

The official OMG-Seg procedure (``open_voc_inference``, used for its ADE evaluation):

1. mask-pool the last frozen CLIP stage (res5, ``OpenCLIPBackbone.clip_dense_features``) with the
   binarised final query masks (mask logit > 0, i.e. sigmoid > 0.5, after resizing the logits
   bilinearly to the feature resolution; a clip pools over all frames of the tube):
   :func:`mask_pool`;
2. pass the pooled features through the CLIP visual head (``OpenCLIPBackbone.clip_head``);
3. score them with the decoder's classifier: ``logit_scale`` x cosine similarity, max over the
   synonyms of a class (:func:`clip_class_logits`);
4. softmax the CLIP scores and the learned scores over the K classes (void left out);
5. fuse geometrically, ``p = p_learned^(1-a) * p_clip^a`` renormalised over the K classes, with
   ``a = alpha`` for classes seen in training and ``a = beta`` for unseen ones; a query whose
   binarised mask is empty keeps its learned scores (``a = 0``);
6. scale the fused probabilities by ``1 - p_void`` and return log-probabilities
   [..., K + 1] (:func:`fuse_scores`): a softmax of the result gives back
   ``[p_fused * (1 - p_void), p_void]``, so the softmax-based post-processing is unchanged.

"Seen" classes (:func:`seen_classes`): a class one of whose synonyms (normalised like
``split_synonyms``) is a synonym of a class of the training vocabulary.

Shape shorthand: B clips, Q queries, T frames, C CLIP res5 channels, h x w the res5 grid,
H x W the mask-logit grid, D the CLIP embedding dim, K classes, S synonyms per class.
"""
from typing import Iterable, Sequence, Set, Tuple

import torch
from torch.nn import functional as F

from ..data.datasets.ov_vocabularies import split_synonyms

__all__ = [
    "clip_class_logits",
    "fuse_scores",
    "mask_pool",
    "open_vocab_logits",
    "seen_classes",
    "synonym_set",
]


def mask_pool(features: torch.Tensor,
              mask_logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Average the features inside each binarised query mask (tube: over all its frames).

    Args:
        features: [B, T, C, h, w] dense CLIP features of every frame of each clip.
        mask_logits: [B, Q, T, H, W] mask logits (any resolution: resized bilinearly to h x w,
            ``align_corners=False``, then binarised at logit > 0, i.e. sigmoid > 0.5).

    Returns:
        ``(pooled, valid)``: pooled [B, Q, C] (mean of the features over the mask's pixels of
        all T frames; zeros for an empty mask) and valid bool [B, Q] (the mask is not empty at
        the feature resolution).
    """
    if features.dim() != 5 or mask_logits.dim() != 5:
        raise ValueError(f"mask_pool expects features [B, T, C, h, w] and mask logits "
                         f"[B, Q, T, H, W], got {tuple(features.shape)} and "
                         f"{tuple(mask_logits.shape)}")
    b, t, _, h, w = features.shape
    if mask_logits.shape[0] != b or mask_logits.shape[2] != t:
        raise ValueError(f"mask_pool: {tuple(mask_logits.shape)} mask logits do not match "
                         f"{tuple(features.shape)} features (B and T must agree)")
    q = mask_logits.shape[1]
    masks = mask_logits.float()
    if tuple(masks.shape[-2:]) != (h, w):
        masks = F.interpolate(masks.flatten(0, 2)[:, None], size=(h, w), mode="bilinear",
                              align_corners=False).view(b, q, t, h, w)
    binary = (masks > 0).to(features.dtype)
    area = binary.sum(dim=(2, 3, 4))  # [B, Q]
    pooled = torch.einsum("btchw,bqthw->bqc", features, binary) / area.clamp(min=1)[..., None]
    return pooled, area > 0


def clip_class_logits(embeddings: torch.Tensor, text: torch.Tensor,
                      logit_scale: float) -> torch.Tensor:
    """The decoder's classifier on CLIP embeddings, without the void column.

    Args:
        embeddings: [..., D] region embeddings (normalised here).
        text: [K, S, D] text embeddings per synonym (normalised here).
        logit_scale: multiplier of the cosine similarity (``MODEL.OMG.CLIP.LOGIT_SCALE``, 100).

    Returns:
        [..., K]: ``logit_scale`` x the max over synonyms of the cosine similarity.
    """
    x = F.normalize(embeddings.float(), dim=-1)
    t = F.normalize(text.to(x), dim=-1)
    return torch.einsum("...d,ksd->...ks", x, t).amax(dim=-1) * float(logit_scale)


def fuse_scores(mask_cls: torch.Tensor, clip_logits: torch.Tensor, valid: torch.Tensor,
                seen: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """Geometric ensemble of learned and CLIP class scores, as log-probabilities.

    Args:
        mask_cls: [..., K + 1] learned class logits (last column: void).
        clip_logits: [..., K] CLIP class logits (:func:`clip_class_logits`).
        valid: bool [...]: queries whose binarised mask is non-empty; the others keep their
            learned scores.
        seen: bool [K]: classes seen in training (exponent ``alpha``; unseen: ``beta``).
        alpha, beta: exponents of the CLIP probability for seen / unseen classes.

    Returns:
        [..., K + 1] log-probabilities: ``log(p_fused * (1 - p_void))`` for the K classes, with
        ``p_fused`` the renormalised ``p_learned^(1-a) * p_clip^a`` (softmaxes over the K
        classes), and ``log p_void`` (``p_void`` from the softmax of ``mask_cls`` over K + 1).
    """
    k = clip_logits.shape[-1]
    if mask_cls.shape[-1] != k + 1:
        raise ValueError(f"fuse_scores: {mask_cls.shape[-1]} learned logits (K + 1 with void) "
                         f"for {k} CLIP logits")
    if seen.shape != (k,):
        raise ValueError(f"fuse_scores: seen has shape {tuple(seen.shape)}, expected ({k},)")
    mask_cls32 = mask_cls.float()
    log_learned = F.log_softmax(mask_cls32[..., :k], dim=-1)
    log_clip = F.log_softmax(clip_logits.float(), dim=-1)
    exponent = torch.where(seen.to(mask_cls.device), float(alpha), float(beta))  # [K]
    exponent = exponent * valid[..., None].to(exponent)  # empty mask: a = 0
    log_fused = F.log_softmax((1 - exponent) * log_learned + exponent * log_clip, dim=-1)
    log_all = F.log_softmax(mask_cls32, dim=-1)
    log_void = log_all[..., k:]
    # log(1 - p_void) = logsumexp over the K class logits - logsumexp over all K + 1.
    log_not_void = torch.logsumexp(log_all[..., :k], dim=-1, keepdim=True)
    return torch.cat([log_fused + log_not_void, log_void], dim=-1).to(mask_cls.dtype)


def synonym_set(names: Iterable[str]) -> Set[str]:
    """All normalised synonyms (``split_synonyms``) of some class strings."""
    return {s for name in names for s in split_synonyms(name)}


def seen_classes(names: Sequence[str], training_synonyms: Iterable[str]) -> torch.Tensor:
    """Bool [K]: class ``k`` is seen when one of its normalised synonyms is among
    ``training_synonyms`` (themselves normalised with ``split_synonyms``, e.g. from
    :func:`synonym_set` of the training vocabulary).

    ``seen_classes(["kid, child", "zebra"], synonym_set(["person, child"]))`` -> [True, False].
    """
    known = synonym_set(training_synonyms)
    return torch.tensor([any(s in known for s in split_synonyms(n)) for n in names],
                        dtype=torch.bool)


def open_vocab_logits(backbone, features, mask_logits: torch.Tensor, mask_cls: torch.Tensor,
                      text: torch.Tensor, seen: torch.Tensor, *, alpha: float, beta: float,
                      logit_scale: float) -> torch.Tensor:
    """Steps 1-6 on a batch of clips: fused log-probabilities [B, Q, K + 1].

    Args:
        backbone: the ``OpenCLIPBackbone`` (``clip_dense_features``, ``clip_head``).
        features: its output dict (``"res5"`` [B*T, C, h, w], frames clip after clip) or the
            res5 tensor itself.
        mask_logits: [B, Q, T, H, W] final mask logits.
        mask_cls: [B, Q, K + 1] learned class logits.
        text: [K, S, D] text embeddings of the vocabulary.
        seen: bool [K] (:func:`seen_classes`).
        alpha, beta, logit_scale: see :func:`fuse_scores` and :func:`clip_class_logits`.
    """
    b, _, t = mask_logits.shape[:3]
    with torch.no_grad():
        dense = backbone.clip_dense_features(features).float()
        if dense.shape[0] != b * t:
            raise ValueError(f"open_vocab_logits: {dense.shape[0]} feature maps for {b} clips of "
                             f"{t} frames")
        pooled, valid = mask_pool(dense.reshape(b, t, *dense.shape[1:]), mask_logits)
        clip_logits = clip_class_logits(backbone.clip_head(pooled), text, logit_scale)
        return fuse_scores(mask_cls, clip_logits, valid, seen, alpha, beta)
