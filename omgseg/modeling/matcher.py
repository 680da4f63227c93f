"""Hungarian matcher between predicted mask tubes and ground-truth tubes.

A prediction is a class distribution over ``K + 1`` entries (last = void) and a mask tube
``[T, h, w]`` of logits; a target is a class id (``-1`` = no class cost) and a binary tube
``[T, H, W]``. The matching cost of (query, target) is

    C = cost_mask * BCE + cost_dice * Dice + cost_class * (-p(label))

with BCE and Dice evaluated on ``num_points`` random points shared by every prediction and target
of a sample. A tube is matched as ONE image, as the official head does: its T frames are stacked
along the height (``T*h x w`` for predictions, ``T*H x W`` for targets) and the points are drawn
in ``[0, 1]^2`` of that stacked image, so a clip gets ``num_points`` points in all, not per frame.
Samples with ``"match": False`` (prompt samples, where query i answers prompt i) are paired by
identity.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.nn import functional as F

from detectron2.config import configurable
from detectron2.projects.point_rend.point_features import point_sample

__all__ = ["HungarianMatcher", "batch_sigmoid_ce_cost", "batch_dice_cost", "stack_frames"]


def stack_frames(tubes: Tensor) -> Tensor:
    """``[n, T, h, w]`` -> ``[n, 1, T*h, w]``: the frames of each tube stacked along the height."""
    n, t, h, w = tubes.shape
    return tubes.reshape(n, 1, t * h, w)


def batch_sigmoid_ce_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """Pairwise mean sigmoid binary cross-entropy.

    Args:
        inputs: ``[Nq, P]`` logits.
        targets: ``[Nt, P]`` values in ``[0, 1]``.

    Returns:
        ``[Nq, Nt]``: ``cost[i, j] = mean_p BCE(inputs[i, p], targets[j, p])``.
    """
    num_points = inputs.shape[1]
    # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x); linear in the target.
    pos = F.softplus(-inputs)
    neg = F.softplus(inputs)
    cost = pos @ targets.transpose(0, 1) + neg @ (1.0 - targets).transpose(0, 1)
    return cost / max(num_points, 1)


def batch_dice_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """Pairwise dice cost ``1 - (2 x.y + 1) / (sum x + sum y + 1)`` with ``x = sigmoid(inputs)``.

    Args:
        inputs: ``[Nq, P]`` logits.
        targets: ``[Nt, P]`` values in ``[0, 1]``.

    Returns:
        ``[Nq, Nt]`` cost.
    """
    probs = inputs.sigmoid()
    numerator = 2.0 * (probs @ targets.transpose(0, 1))
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1.0 - (numerator + 1.0) / (denominator + 1.0)


class HungarianMatcher(nn.Module):
    """One-to-one assignment of queries to target tubes (Mask2Former costs, tube-aware)."""

    @configurable
    def __init__(
        self,
        cost_class: float = 2.0,
        cost_mask: float = 5.0,
        cost_dice: float = 5.0,
        num_points: int = 12544,
    ):
        """
        Args:
            cost_class: weight of the classification cost ``-p(label)``.
            cost_mask: weight of the point-sampled sigmoid BCE cost.
            cost_dice: weight of the point-sampled dice cost.
            num_points: random points per sample (over the whole stacked tube) for the mask
                costs.
        """
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("all matching costs are 0")
        self.cost_class = float(cost_class)
        self.cost_mask = float(cost_mask)
        self.cost_dice = float(cost_dice)
        self.num_points = int(num_points)

    @classmethod
    def from_config(cls, cfg) -> Dict:
        return {
            "cost_class": cfg.MODEL.OMG.CLASS_WEIGHT,
            "cost_mask": cfg.MODEL.OMG.MASK_WEIGHT,
            "cost_dice": cfg.MODEL.OMG.DICE_WEIGHT,
            "num_points": cfg.MODEL.OMG.TRAIN_NUM_POINTS,
        }

    # ------------------------------------------------------------------------------------------
    def sample_point_coords(self, device: torch.device) -> Tensor:
        """Random normalised point coordinates ``[1, num_points, 2]`` for one sample."""
        return torch.rand(1, self.num_points, 2, device=device)

    @torch.no_grad()
    def cost_components(
        self,
        pred_logits: Tensor,
        pred_masks: Tensor,
        labels: Tensor,
        tgt_masks: Tensor,
        point_coords: Optional[Tensor] = None,
    ) -> Dict[str, Tensor]:
        """Unweighted cost matrices of one sample.

        Args:
            pred_logits: ``[Q, K+1]`` class logits.
            pred_masks: ``[Q, T, h, w]`` mask logits.
            labels: ``[M]`` int64 class ids; ``-1`` contributes no class cost.
            tgt_masks: ``[M, T, H, W]`` bool / float target tubes.
            point_coords: ``[1, P, 2]`` (or ``[P, 2]``) normalised ``(x, y)`` coordinates in the
                frames-stacked-along-height image; drawn with :meth:`sample_point_coords` when
                ``None``.

        Returns:
            ``{"class", "mask", "dice"}``, each ``[Q, M]`` float32.
        """
        pred_logits = pred_logits.float()
        pred_masks = pred_masks.float()
        num_queries = pred_logits.shape[0]
        num_targets = labels.shape[0]
        device = pred_logits.device
        if num_targets == 0:
            empty = pred_logits.new_zeros(num_queries, 0)
            return {"class": empty, "mask": empty.clone(), "dice": empty.clone()}
        if pred_masks.dim() != 4 or tgt_masks.dim() != 4:
            raise ValueError(
                f"expected pred_masks [Q, T, h, w] and target masks [M, T, H, W], got "
                f"{tuple(pred_masks.shape)} and {tuple(tgt_masks.shape)}"
            )
        if pred_masks.shape[1] != tgt_masks.shape[1]:
            raise ValueError(
                f"prediction has {pred_masks.shape[1]} frames, targets {tgt_masks.shape[1]}"
            )

        # Class cost: -p(label); targets without a class cost nothing.
        labels = labels.to(device)
        probs = pred_logits.softmax(-1)
        valid = labels >= 0
        cost_class = -probs[:, labels.clamp(min=0)]
        cost_class = cost_class * valid[None, :].to(cost_class.dtype)

        # Mask costs on points shared by all predictions / targets, drawn over the stacked tube.
        if point_coords is None:
            point_coords = self.sample_point_coords(device)
        point_coords = point_coords.to(device=device, dtype=torch.float32)
        if point_coords.dim() == 2:
            point_coords = point_coords[None]
        tgt = stack_frames(tgt_masks.to(device=device, dtype=torch.float32))  # [M, 1, T*H, W]
        tgt_points = point_sample(
            tgt, point_coords.expand(num_targets, -1, -1), align_corners=False
        ).flatten(1)  # [M, P]
        pred_points = point_sample(
            stack_frames(pred_masks), point_coords.expand(num_queries, -1, -1), align_corners=False
        ).flatten(1)  # [Q, P]
        cost_mask = batch_sigmoid_ce_cost(pred_points, tgt_points)
        cost_dice = batch_dice_cost(pred_points, tgt_points)
        return {"class": cost_class, "mask": cost_mask, "dice": cost_dice}

    @torch.no_grad()
    def compute_cost(
        self,
        pred_logits: Tensor,
        pred_masks: Tensor,
        labels: Tensor,
        tgt_masks: Tensor,
        point_coords: Optional[Tensor] = None,
    ) -> Tensor:
        """Weighted cost matrix ``[Q, M]`` of one sample (arguments as :meth:`cost_components`)."""
        with torch.autocast(device_type=pred_logits.device.type, enabled=False):
            comps = self.cost_components(pred_logits, pred_masks, labels, tgt_masks, point_coords)
            return (
                self.cost_mask * comps["mask"]
                + self.cost_dice * comps["dice"]
                + self.cost_class * comps["class"]
            )

    @torch.no_grad()
    def forward(
        self, outputs: Dict[str, Tensor], targets: Sequence[Dict]
    ) -> List[Tuple[Tensor, Tensor]]:
        """Match each sample's queries to its targets.

        Args:
            outputs: ``pred_logits [B, Q, K+1]``, ``pred_masks [B, Q, T, h, w]``.
            targets: ``B`` dicts with ``labels [M]``, ``masks [M, T, H, W]`` and optional
                ``match`` (default ``True``; ``False`` pairs query i with target i).

        Returns:
            ``B`` pairs ``(pred_idx, tgt_idx)`` of int64 CPU tensors, sorted by ``pred_idx`` for
            Hungarian matches.
        """
        pred_logits = outputs["pred_logits"]
        pred_masks = outputs["pred_masks"]
        if len(targets) != pred_logits.shape[0]:
            raise ValueError(f"{len(targets)} targets for a batch of {pred_logits.shape[0]}")
        num_queries = pred_logits.shape[1]
        indices = []
        for b, tgt in enumerate(targets):
            num_targets = int(tgt["labels"].shape[0])
            if num_targets == 0:
                empty = torch.zeros(0, dtype=torch.int64)
                indices.append((empty, empty.clone()))
                continue
            if not tgt.get("match", True):
                if num_targets > num_queries:
                    raise ValueError(
                        f"prompt sample has {num_targets} targets but only {num_queries} queries"
                    )
                ar = torch.arange(num_targets, dtype=torch.int64)
                indices.append((ar, ar.clone()))
                continue
            cost = self.compute_cost(pred_logits[b], pred_masks[b], tgt["labels"], tgt["masks"])
            cost = torch.nan_to_num(cost.cpu(), nan=1e8, posinf=1e8, neginf=-1e8)
            row, col = linear_sum_assignment(cost.numpy())
            indices.append(
                (torch.as_tensor(row, dtype=torch.int64), torch.as_tensor(col, dtype=torch.int64))
            )
        return indices

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(cost_class={self.cost_class}, cost_mask={self.cost_mask}, "
            f"cost_dice={self.cost_dice}, num_points={self.num_points})"
        )
