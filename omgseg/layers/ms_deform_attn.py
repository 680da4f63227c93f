"""Multi-scale deformable attention (Deformable DETR) with a CPU-friendly PyTorch core.

Shape shorthand: N = batch (frames folded in), Lq = queries, S = sum of h_l * w_l over the L
levels, M = heads, Dh = channels per head, L = levels, P = sampling points per head and level,
C = model width (M * Dh).

Coordinates follow the pixel-centre convention of ``F.grid_sample(align_corners=False)``: a
normalised location (x, y) in [0, 1] addresses pixel coordinate (x * w - 0.5, y * h - 0.5), so
pixel ``i`` of a row of width ``w`` has its centre at ``(i + 0.5) / w``. Samples outside the map
read zeros.

The PyTorch core (``ms_deform_attn_core_pytorch``, a gather of the bilinear corners with
``F.embedding_bag``) runs anywhere. With ``impl="auto"`` and CUDA
input, an already installed fused kernel is used when one can be imported (Mask2Former's
``MultiScaleDeformableAttention`` extension, or ``mmcv.ops``); nothing is ever compiled here.
"""

import logging
import math
from typing import Callable, List, Optional, Tuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

__all__ = [
    "MSDeformAttn",
    "ms_deform_attn_core_pytorch",
    "multi_scale_deformable_attention",
    "DEFORM_ATTN_IMPLS",
]

logger = logging.getLogger(__name__)

DEFORM_ATTN_IMPLS = ("auto", "pytorch")

# Signature of a fused op: (value, spatial_shapes, level_start_index, sampling_locations,
# attention_weights) -> [N, Lq, M * Dh].
FusedOp = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor
]

_FUSED_OP: Optional[FusedOp] = None
_FUSED_RESOLVED = False


def _zero_padded_levels(value: torch.Tensor, shapes: List[Tuple[int, int]]) -> torch.Tensor:
    """[N, S, M, Dh] -> [N, S', M * Dh]: each level's h x w map placed in a zero (h + 3) x (w + 3)
    map with one row / column of zeros before it and two after it, levels concatenated."""
    n, _, heads, dh = value.shape
    padded_sizes = [(h + 3) * (w + 3) for h, w in shapes]
    padded = value.new_zeros(n, sum(padded_sizes), heads * dh)
    src = dst = 0
    for (h, w), size in zip(shapes, padded_sizes):
        level = value[:, src : src + h * w].reshape(n, h, w, heads * dh)
        target = padded[:, dst : dst + size].view(n, h + 3, w + 3, heads * dh)
        target[:, 1 : h + 1, 1 : w + 1] = level
        src += h * w
        dst += size
    return padded


def ms_deform_attn_core_pytorch(
    value: torch.Tensor,
    spatial_shapes: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Deformable attention in plain PyTorch: bilinear samples (zeros outside, pixel centres).

    Each sample blends the 4 pixels around it. The ``4 * L * P`` corner reads of one (frame,
    query, head), each weighted by attention weight x bilinear weight, form one bag of
    ``F.embedding_bag(mode="sum")`` over the rows of a zero-padded copy of ``value``. This is what
    ``grid_sample`` per level followed by the weighted sum computes, without the
    [N * M, Dh, Lq, L * P] intermediate and its layout copies, and the result is already in the
    [N, Lq, M * Dh] layout. Samples are clamped into the zero border (a sample farther out reads
    only zeros anyway), so no corner needs an inside-the-map test.

    Args:
        value: [N, S, M, Dh], the L levels flattened row-major and concatenated.
        spatial_shapes: [L, 2] long, (h, w) of each level; sum of h * w must be S.
        sampling_locations: [N, Lq, M, L, P, 2], (x, y) normalised to [0, 1] per level
            (values outside read zeros).
        attention_weights: [N, Lq, M, L, P], the weight of each sample.

    Returns:
        [N, Lq, M * Dh]: per head, the weighted sum of the samples over levels and points.
    """
    n, s, heads, dh = value.shape
    _, lq, _, levels, points, _ = sampling_locations.shape
    shapes: List[Tuple[int, int]] = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    if len(shapes) != levels:
        raise ValueError(f"spatial_shapes has {len(shapes)} levels, sampling_locations {levels}")
    if sum(h * w for h, w in shapes) != s:
        raise ValueError(
            f"value has {s} positions, spatial_shapes sum to {sum(h * w for h, w in shapes)}"
        )
    device = value.device
    padded = _zero_padded_levels(value, shapes)  # [N, S', M * Dh]
    padded_len = padded.shape[1]

    # Pixel coordinates (pixel centres on integers, as grid_sample with align_corners=False),
    # clamped to [-1, size]: corners then fall in the zero border of the padded map. At least
    # fp32: half precision cannot address pixels of large maps.
    dtype = torch.promote_types(sampling_locations.dtype, torch.float32)
    size_xy = torch.tensor([[w, h] for h, w in shapes], dtype=dtype, device=device)
    size_xy = size_xy.view(levels, 1, 2)
    offset = torch.tensor(-0.5, dtype=dtype, device=device)
    xy = torch.addcmul(offset, sampling_locations.to(dtype), size_xy)
    xy = torch.clamp(xy, min=torch.full_like(size_xy, -1.0), max=size_xy)
    xy0 = xy.floor()
    fx, fy = (xy - xy0).unbind(-1)
    # Bilinear x attention weight of corners (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1).
    weights = attention_weights.to(dtype)
    wy1 = fy * weights
    wy0 = weights - wy1
    wx0 = 1 - fx
    corner_weights = torch.stack((wy0 * wx0, wy0 * fx, wy1 * wx0, wy1 * fx), dim=-1)

    # Row of corner (x0, y0) in padded.view(N * S' * M, Dh) is
    # (n * S' + start_l + (y0 + 1) * (w_l + 3) + x0 + 1) * M + m. NaN locations (a diverged
    # model) get a valid row and keep their NaN weights.
    padded_w = torch.tensor([w + 3 for _, w in shapes], device=device)
    starts = torch.tensor([0] + [(h + 3) * (w + 3) for h, w in shapes][:-1], device=device)
    starts = starts.cumsum(0)
    xy_step = torch.stack((torch.ones_like(padded_w), padded_w), dim=-1).view(levels, 1, 2) * heads
    rows = (torch.nan_to_num(xy0, nan=-1.0).long() * xy_step).sum(-1)
    frame_start = torch.arange(n, device=device).view(n, 1, 1, 1, 1) * padded_len
    head = torch.arange(heads, device=device).view(heads, 1, 1)
    rows += (frame_start + (starts + padded_w + 1).view(levels, 1)) * heads + head
    zero = torch.zeros_like(padded_w)
    corner_step = torch.stack((zero, zero + 1, padded_w, padded_w + 1), dim=-1) * heads
    rows = rows.unsqueeze(-1) + corner_step.view(levels, 1, 4)

    bag = levels * points * 4
    out = F.embedding_bag(
        rows.view(n * lq * heads, bag),
        padded.view(n * padded_len * heads, dh),
        mode="sum",
        per_sample_weights=corner_weights.view(n * lq * heads, bag).to(value.dtype),
    )
    return out.view(n, lq, heads * dh)


def _im2col_step(batch: int, limit: int = 64) -> int:
    """Largest divisor of ``batch`` that is <= ``limit`` (the fused kernels need one)."""
    for step in range(min(batch, limit), 0, -1):
        if batch % step == 0:
            return step
    return 1


def _wrap_mask2former_extension(ext) -> FusedOp:
    """Autograd wrapper around Mask2Former's compiled ``MultiScaleDeformableAttention`` module."""

    class _Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, value, shapes, start_index, locations, weights, step):
            ctx.step = step
            ctx.save_for_backward(value, shapes, start_index, locations, weights)
            return ext.ms_deform_attn_forward(value, shapes, start_index, locations, weights, step)

        @staticmethod
        @once_differentiable
        def backward(ctx, grad_output):
            value, shapes, start_index, locations, weights = ctx.saved_tensors
            grad_value, grad_locations, grad_weights = ext.ms_deform_attn_backward(
                value, shapes, start_index, locations, weights, grad_output.contiguous(), ctx.step
            )
            return grad_value, None, None, grad_locations, grad_weights, None

    def op(value, shapes, start_index, locations, weights):
        return _Function.apply(
            value, shapes, start_index, locations, weights, _im2col_step(value.shape[0])
        )

    return op


def _wrap_mmcv_function(function) -> FusedOp:
    """Adapter for ``mmcv.ops.multi_scale_deform_attn.MultiScaleDeformableAttnFunction``."""

    def op(value, shapes, start_index, locations, weights):
        return function.apply(
            value, shapes, start_index, locations, weights, _im2col_step(value.shape[0])
        )

    return op


def _resolve_fused_op() -> Optional[FusedOp]:
    """Import an installed fused kernel once; ``None`` when none is importable."""
    global _FUSED_OP, _FUSED_RESOLVED
    if _FUSED_RESOLVED:
        return _FUSED_OP
    _FUSED_RESOLVED = True
    try:
        import MultiScaleDeformableAttention as ext  # Mask2Former's compiled op

        _FUSED_OP = _wrap_mask2former_extension(ext)
        logger.info(
            "MSDeformAttn: using the fused CUDA kernel of the "
            "MultiScaleDeformableAttention extension"
        )
        return _FUSED_OP
    except ImportError:
        pass
    try:
        from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction

        _FUSED_OP = _wrap_mmcv_function(MultiScaleDeformableAttnFunction)
        logger.info("MSDeformAttn: using the fused CUDA kernel of mmcv.ops")
        return _FUSED_OP
    except ImportError:
        pass
    logger.info("MSDeformAttn: no fused kernel importable; using the PyTorch core")
    return None


def multi_scale_deformable_attention(
    value: torch.Tensor,
    spatial_shapes: torch.Tensor,
    level_start_index: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
    impl: str = "auto",
) -> torch.Tensor:
    """Dispatch to a fused kernel (``impl="auto"``, CUDA input, kernel importable) or PyTorch.

    Shapes as in ``ms_deform_attn_core_pytorch``; ``level_start_index`` is [L] long, the offset
    of each level in S. Returns [N, Lq, M * Dh].
    """
    if impl not in DEFORM_ATTN_IMPLS:
        raise ValueError(
            f"Unknown deformable-attention impl {impl!r}; expected one of {DEFORM_ATTN_IMPLS}"
        )
    if impl == "auto" and value.is_cuda:
        op = _resolve_fused_op()
        if op is not None:
            dtype = value.dtype
            # The fused kernels are safe in fp32; half inputs (autocast) are computed in fp32.
            out = op(
                value.float().contiguous(),
                spatial_shapes.long().contiguous(),
                level_start_index.long().contiguous(),
                sampling_locations.float().contiguous(),
                attention_weights.float().contiguous(),
            )
            return out.to(dtype)
    return ms_deform_attn_core_pytorch(value, spatial_shapes, sampling_locations, attention_weights)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention: each query samples P points per head and level.

    Parameters: ``sampling_offsets`` Linear(C, M*L*P*2), ``attention_weights`` Linear(C, M*L*P),
    ``value_proj`` and ``output_proj`` Linear(C, C). At initialisation the attention weights are
    uniform (zero weight and bias) and the offsets of head k point along angle 2*pi*k/M, the
    p-th point (p + 1) units (pixels of the level) away from the reference point.
    """

    def __init__(
        self,
        d_model: int = 256,
        n_levels: int = 4,
        n_heads: int = 8,
        n_points: int = 4,
        impl: str = "auto",
    ):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if impl not in DEFORM_ATTN_IMPLS:
            raise ValueError(
                f"Unknown deformable-attention impl {impl!r}; expected one of {DEFORM_ATTN_IMPLS}"
            )
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points
        self.impl = impl
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.n_heads, dtype=torch.float64) * (2.0 * math.pi / self.n_heads)
        directions = torch.stack((angles.cos(), angles.sin()), dim=-1)  # [M, 2]
        directions = directions / directions.abs().max(dim=-1, keepdim=True).values
        scale = torch.arange(1, self.n_points + 1, dtype=torch.float64).view(1, 1, -1, 1)
        bias = (
            directions.view(self.n_heads, 1, 1, 2).expand(-1, self.n_levels, self.n_points, -1)
            * scale
        )
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(bias.reshape(-1).to(self.sampling_offsets.bias.dtype))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        padding_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """
        Args:
            query: [N, Lq, C] (position embedding already added).
            reference_points: [N, Lq, L, 2] (x, y) in [0, 1] per level, or [N, Lq, L, 4]
                boxes (cx, cy, w, h) whose half-size scales the offsets.
            value: [N, S, C], the levels flattened and concatenated.
            spatial_shapes: [L, 2] long (h, w); level_start_index: [L] long.
            padding_mask: optional [N, S] bool, True where ``value`` is padding (reads zero).

        Returns:
            [N, Lq, C].
        """
        n, lq, _ = query.shape
        s = value.shape[1]
        heads, levels, points = self.n_heads, self.n_levels, self.n_points
        if spatial_shapes.shape[0] != levels:
            raise ValueError(
                f"Expected {levels} levels, got spatial_shapes {tuple(spatial_shapes.shape)}"
            )

        v = self.value_proj(value)
        if padding_mask is not None:
            v = v.masked_fill(padding_mask[..., None], 0.0)
        v = v.view(n, s, heads, self.d_model // heads)

        offsets = self.sampling_offsets(query).view(n, lq, heads, levels, points, 2)
        weights = self.attention_weights(query).view(n, lq, heads, levels * points)
        weights = weights.softmax(-1).view(n, lq, heads, levels, points)

        if reference_points.shape[-1] == 2:
            # Offsets are in pixels of each level: divide by (w, h).
            normalizer = torch.stack((spatial_shapes[..., 1], spatial_shapes[..., 0]), dim=-1).to(
                offsets.dtype
            )
            locations = (
                reference_points[:, :, None, :, None, :]
                + offsets / normalizer[None, None, None, :, None, :]
            )
        elif reference_points.shape[-1] == 4:
            locations = (
                reference_points[:, :, None, :, None, :2]
                + offsets / points * reference_points[:, :, None, :, None, 2:] * 0.5
            )
        else:
            raise ValueError(
                f"reference_points must end in 2 or 4, got {tuple(reference_points.shape)}"
            )

        out = multi_scale_deformable_attention(
            v, spatial_shapes, level_start_index, locations, weights, impl=self.impl
        )
        return self.output_proj(out)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_levels={self.n_levels}, n_heads={self.n_heads}, "
            f"n_points={self.n_points}, impl={self.impl!r}"
        )
