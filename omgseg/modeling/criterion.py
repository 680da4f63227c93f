"""Set criterion of OMG-Seg (Mask2Former losses on mask tubes, T >= 1), normalised as the
official head (``Mask2FormerVideoHead._loss_by_feat_single``) normalises them.

For every output (the final one and, with deep supervision, each ``aux_outputs`` entry, matched
again) the criterion computes

* ``loss_ce``: cross-entropy over ``K + 1`` classes weighted by the class weight of the target (1,
  void ``eos_coef``); unmatched queries target void; queries matched to a ``-1`` target and whole
  prompt samples (``match`` False) get no loss. Sum / ``cls_avg_factor``.
* ``loss_objectness``: sigmoid focal loss (alpha 0.25, gamma 2) on the objectness logit, target 1
  for matched queries, else 0; prompt samples are left out. Sum / ``cls_avg_factor``.
* ``loss_mask`` / ``loss_dice``: sigmoid BCE (mean over points) and dice of matched tubes on
  PointRend importance-sampled points. A tube is ONE image: its frames are stacked along the
  height (``T*h x w``) and ``num_points`` points are sampled over the whole stack. Sum over
  tubes / ``num_masks``.

Normalisers, each averaged over workers and at least 1:

* ``cls_avg_factor`` = sum over the queries of every non-prompt sample of the class weight of its
  target: 1 for a matched query (the official code counts a ``-1`` target as class 0, weight 1),
  ``eos_coef`` for an unmatched one; prompt samples add 0.
* ``num_masks`` = sum over samples of max(matched queries, 1) (mmdet's ``MaskPseudoSampler``
  counts at least one positive per image).

Losses are returned unweighted; ``weight_dict`` holds the weight of every key.
"""
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.ops import sigmoid_focal_loss

from detectron2.config import configurable
from detectron2.projects.point_rend.point_features import (
    get_uncertain_point_coords_with_randomness,
    point_sample,
)
from detectron2.utils import comm

from .matcher import HungarianMatcher, stack_frames

__all__ = [
    "SetCriterion",
    "Normalisers",
    "build_weight_dict",
    "dice_loss",
    "sigmoid_ce_loss",
    "calculate_uncertainty",
]

_BASE_LOSS_KEYS = {
    "labels": ("loss_ce",),
    "masks": ("loss_mask", "loss_dice"),
    "objectness": ("loss_objectness",),
}


def dice_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Sum over rows of ``1 - (2 x.y + 1) / (sum x + sum y + 1)``, ``x = sigmoid(inputs)``,
    divided by ``num_masks``. ``inputs`` / ``targets``: ``[n, P]``."""
    probs = inputs.sigmoid().flatten(1)
    targets = targets.flatten(1)
    numerator = 2.0 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    loss = 1.0 - (numerator + 1.0) / (denominator + 1.0)
    return loss.sum() / num_masks


def sigmoid_ce_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Per-row mean of sigmoid BCE, summed over rows and divided by ``num_masks``."""
    loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    return loss.flatten(1).mean(1).sum() / num_masks


def calculate_uncertainty(logits: Tensor) -> Tensor:
    """PointRend uncertainty of class-agnostic logits ``[n, 1, P]``: ``-|logit|``."""
    assert logits.shape[1] == 1
    return -torch.abs(logits)


def build_weight_dict(
    class_weight: float,
    mask_weight: float,
    dice_weight: float,
    objectness_weight: float,
    num_aux: int = 0,
) -> Dict[str, float]:
    """``{"loss_ce": class_weight, ..., "loss_ce_0": class_weight, ...}`` for ``num_aux`` aux
    outputs."""
    base = {
        "loss_ce": float(class_weight),
        "loss_mask": float(mask_weight),
        "loss_dice": float(dice_weight),
        "loss_objectness": float(objectness_weight),
    }
    out = dict(base)
    for i in range(num_aux):
        out.update({f"{k}_{i}": v for k, v in base.items()})
    return out


class Normalisers(NamedTuple):
    """Loss denominators (see the module docstring)."""

    num_masks: float
    cls_avg_factor: float


def _reduce_mean_at_least_one(values: Sequence[float], device: torch.device) -> List[float]:
    """Average each value over workers (one all_reduce); each at least 1."""
    t = torch.as_tensor([float(v) for v in values], dtype=torch.float32, device=device)
    world_size = 1
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
        world_size = comm.get_world_size()
    return [max(v / world_size, 1.0) for v in t.tolist()]


class SetCriterion(nn.Module):
    """Hungarian-matched losses for OMG-Seg (see the module docstring)."""

    @configurable
    def __init__(
        self,
        matcher: nn.Module,
        weight_dict: Dict[str, float],
        eos_coef: float = 0.1,
        losses: Iterable[str] = ("labels", "masks", "objectness"),
        num_points: int = 12544,
        oversample_ratio: float = 3.0,
        importance_sample_ratio: float = 0.75,
        deep_supervision: bool = True,
    ):
        """
        Args:
            matcher: module mapping ``(outputs, targets)`` to per-sample ``(pred_idx, tgt_idx)``.
            weight_dict: weight of every loss key (incl. ``_{i}`` aux keys).
            eos_coef: cross-entropy weight of the void class.
            losses: subset of ``"labels"``, ``"masks"``, ``"objectness"``.
            num_points: sampled points per tube (frames stacked along the height) for the mask
                losses.
            oversample_ratio / importance_sample_ratio: PointRend importance sampling.
            deep_supervision: also supervise ``outputs["aux_outputs"]``.
        """
        super().__init__()
        losses = tuple(losses)
        for name in losses:
            if name not in _BASE_LOSS_KEYS:
                raise ValueError(f"unknown loss {name!r}; expected one of {list(_BASE_LOSS_KEYS)}")
        self.matcher = matcher
        self.weight_dict = dict(weight_dict)
        self.eos_coef = float(eos_coef)
        self.losses = losses
        self.num_points = int(num_points)
        self.oversample_ratio = float(oversample_ratio)
        self.importance_sample_ratio = float(importance_sample_ratio)
        self.deep_supervision = bool(deep_supervision)

    @classmethod
    def from_config(cls, cfg) -> Dict:
        omg = cfg.MODEL.OMG
        deep = bool(omg.DEEP_SUPERVISION)
        return {
            "matcher": HungarianMatcher(cfg),
            "weight_dict": build_weight_dict(
                omg.CLASS_WEIGHT,
                omg.MASK_WEIGHT,
                omg.DICE_WEIGHT,
                omg.OBJECTNESS_WEIGHT,
                num_aux=omg.DEC_LAYERS if deep else 0,
            ),
            "eos_coef": omg.NO_OBJECT_WEIGHT,
            "losses": ("labels", "masks", "objectness"),
            "num_points": omg.TRAIN_NUM_POINTS,
            "oversample_ratio": omg.OVERSAMPLE_RATIO,
            "importance_sample_ratio": omg.IMPORTANCE_SAMPLE_RATIO,
            "deep_supervision": deep,
        }

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _batch_pred_index(indices: Sequence[Tuple[Tensor, Tensor]]) -> Tuple[Tensor, Tensor]:
        batch_idx = torch.cat(
            [torch.full_like(src, i, dtype=torch.int64) for i, (src, _) in enumerate(indices)]
        )
        src_idx = torch.cat([src.to(torch.int64) for src, _ in indices])
        return batch_idx, src_idx

    @staticmethod
    def _prompt_flags(targets: Sequence[Dict]) -> List[bool]:
        return [not bool(t.get("match", True)) for t in targets]

    def normaliser_sums(self, targets: Sequence[Dict], num_queries: int) -> Tuple[float, float]:
        """This worker's (num_masks, cls_avg_factor) sums over ``targets`` before the reduction
        over workers; a batch decoded in groups (e.g. prompt samples and images, different Q or
        T) adds the sums of its groups and reduces once (:meth:`reduce_normalisers`)."""
        num_masks = 0.0
        cls_weight = 0.0
        for tgt, is_prompt in zip(targets, self._prompt_flags(targets)):
            matched = min(int(tgt["labels"].shape[0]), num_queries)
            num_masks += max(matched, 1)
            if not is_prompt:
                cls_weight += matched + self.eos_coef * (num_queries - matched)
        return num_masks, cls_weight

    @staticmethod
    def reduce_normalisers(sums: Sequence[float], device) -> Normalisers:
        """:class:`Normalisers` from (num_masks, cls_avg_factor) sums: averaged over workers
        (one all_reduce), each at least 1."""
        return Normalisers(*_reduce_mean_at_least_one(list(sums), device))

    def normalisers(self, targets: Sequence[Dict], num_queries: int, device) -> Normalisers:
        """``num_masks`` and ``cls_avg_factor`` of a batch (the same for every decoder layer: each
        layer's matching pairs min(M, Q) queries per sample)."""
        return self.reduce_normalisers(self.normaliser_sums(targets, num_queries), device)

    def loss_labels(self, outputs, targets, indices, norms: Normalisers) -> Dict[str, Tensor]:
        """Class-weighted CE / cls_avg_factor; unmatched -> void (K); label -1 and prompt samples
        get no loss."""
        logits = outputs["pred_logits"].float()  # [B, Q, K+1]
        bsz, num_queries, num_cls1 = logits.shape
        num_classes = num_cls1 - 1
        device = logits.device
        target_classes = torch.full(
            (bsz, num_queries), num_classes, dtype=torch.int64, device=device
        )
        for b, ((src, tgt_idx), tgt) in enumerate(zip(indices, targets)):
            if src.numel() == 0:
                continue
            labels = tgt["labels"].to(device=device, dtype=torch.int64)[tgt_idx.to(device)]
            # -1 stays -1: ignored by cross_entropy below.
            target_classes[b, src.to(device)] = labels
        for b, is_prompt in enumerate(self._prompt_flags(targets)):
            if is_prompt:
                target_classes[b] = -1
        if bool((target_classes >= 0).any()):
            empty_weight = torch.ones(num_cls1, dtype=logits.dtype, device=device)
            empty_weight[-1] = self.eos_coef
            loss_ce = F.cross_entropy(
                logits.transpose(1, 2),
                target_classes,
                weight=empty_weight,
                ignore_index=-1,
                reduction="sum",
            ) / norms.cls_avg_factor
        else:
            loss_ce = logits.sum() * 0.0
        return {"loss_ce": loss_ce}

    def _sample_points(self, src_masks: Tensor) -> Tensor:
        """Importance-sampled coordinates ``[n, P, 2]`` for class-agnostic maps ``[n, 1, h, w]``."""
        return get_uncertain_point_coords_with_randomness(
            src_masks,
            calculate_uncertainty,
            self.num_points,
            self.oversample_ratio,
            self.importance_sample_ratio,
        )

    def loss_masks(self, outputs, targets, indices, norms: Normalisers) -> Dict[str, Tensor]:
        """Point-sampled sigmoid BCE and dice of matched tubes, each tube sampled as one image
        (frames stacked along the height), / num_masks."""
        pred_masks = outputs["pred_masks"]  # [B, Q, T, h, w]
        batch_idx, src_idx = self._batch_pred_index(indices)
        if src_idx.numel() == 0:
            zero = pred_masks.sum() * 0.0
            return {"loss_mask": zero, "loss_dice": zero.clone()}
        device = pred_masks.device
        src_masks = pred_masks[batch_idx.to(device), src_idx.to(device)]  # [n, T, h, w]
        tgt_masks = torch.cat(
            [t["masks"][j.to(t["masks"].device)] for t, (_, j) in zip(targets, indices)]
        ).to(device=device, dtype=src_masks.dtype)  # [n, T, H, W]
        if src_masks.shape[1] != tgt_masks.shape[1]:
            raise ValueError(
                f"prediction has {src_masks.shape[1]} frames, targets {tgt_masks.shape[1]}"
            )
        src_stack = stack_frames(src_masks)  # [n, 1, T*h, w]
        tgt_stack = stack_frames(tgt_masks)  # [n, 1, T*H, W]
        with torch.no_grad():
            point_coords = self._sample_points(src_stack.detach())  # [n, P, 2]
            point_labels = point_sample(tgt_stack, point_coords, align_corners=False).squeeze(1)
        point_logits = point_sample(src_stack, point_coords, align_corners=False).squeeze(1)
        return {
            "loss_mask": sigmoid_ce_loss(point_logits, point_labels, norms.num_masks),
            "loss_dice": dice_loss(point_logits, point_labels, norms.num_masks),
        }

    def loss_objectness(self, outputs, targets, indices, norms: Normalisers) -> Dict[str, Tensor]:
        """Sigmoid focal loss (alpha 0.25, gamma 2, sum) / cls_avg_factor; prompt samples left
        out."""
        if "pred_objectness" not in outputs:
            raise KeyError("'objectness' loss requested but outputs have no 'pred_objectness'")
        logits = outputs["pred_objectness"][..., 0]  # [B, Q]
        target = torch.zeros_like(logits)
        batch_idx, src_idx = self._batch_pred_index(indices)
        if src_idx.numel() > 0:
            target[batch_idx.to(logits.device), src_idx.to(logits.device)] = 1.0
        keep = torch.tensor(
            [not p for p in self._prompt_flags(targets)], dtype=torch.bool, device=logits.device
        )
        if not bool(keep.any()):
            return {"loss_objectness": logits.sum() * 0.0}
        loss = sigmoid_focal_loss(
            logits[keep], target[keep], alpha=0.25, gamma=2.0, reduction="sum"
        )
        return {"loss_objectness": loss / norms.cls_avg_factor}

    def get_loss(self, name: str, outputs, targets, indices, norms) -> Dict[str, Tensor]:
        fn = {
            "labels": self.loss_labels,
            "masks": self.loss_masks,
            "objectness": self.loss_objectness,
        }[name]
        return fn(outputs, targets, indices, norms)

    def _losses_for(self, outputs, targets, norms, suffix: str = "") -> Dict[str, Tensor]:
        indices = self.matcher(outputs, targets)
        out = {}
        for name in self.losses:
            for k, v in self.get_loss(name, outputs, targets, indices, norms).items():
                out[k + suffix] = v
        return out

    def forward(
        self, outputs: Dict, targets: Sequence[Dict], normalisers: Optional[Normalisers] = None
    ) -> Dict[str, Tensor]:
        """
        Args:
            outputs: decoder output dict (``pred_logits``, ``pred_masks``, ``pred_objectness``,
                optional ``aux_outputs``).
            targets: one dict per clip: ``labels [M]``, ``masks [M, T, H, W]``, optional
                ``match``.
            normalisers: the loss denominators of the whole batch when ``outputs`` are one
                group of it (see :meth:`normaliser_sums`); default: computed from ``targets``.

        Returns:
            Unweighted losses (see ``weight_dict`` for the weights).
        """
        logits = outputs["pred_logits"]
        norms = normalisers
        if norms is None:
            norms = self.normalisers(targets, logits.shape[1], logits.device)
        main = {k: v for k, v in outputs.items() if k != "aux_outputs"}
        losses = self._losses_for(main, targets, norms)
        if self.deep_supervision:
            for i, aux in enumerate(outputs.get("aux_outputs", None) or []):
                losses.update(self._losses_for(aux, targets, norms, suffix=f"_{i}"))
        return losses

    def __repr__(self) -> str:
        lines = [
            f"matcher: {self.matcher!r}",
            f"losses: {list(self.losses)}",
            f"weight_dict: {self.weight_dict}",
            f"eos_coef: {self.eos_coef}",
            f"num_points: {self.num_points}",
            f"oversample_ratio: {self.oversample_ratio}",
            f"importance_sample_ratio: {self.importance_sample_ratio}",
            f"deep_supervision: {self.deep_supervision}",
        ]
        body = "\n".join("    " + line for line in lines)
        return f"Criterion {self.__class__.__name__}\n{body}"
