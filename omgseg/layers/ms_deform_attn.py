"""Multi-scale deformable attention (Deformable DETR) with a CPU-friendly PyTorch core.

Shape shorthand: N = batch (frames folded in), Lq = queries, S = sum of h_l * w_l over the L
levels, M = heads, Dh = channels per head, L = levels, P = sampling points per head and level,
C = model width (M * Dh).

Coordinates follow the pixel-centre convention of ``F.grid_sample(align_corners=False)``: a
normalised location (x, y) in [0, 1] addresses pixel coordinate (x * w - 0.5, y * h - 0.5), so
pixel ``i`` of a row of width ``w`` has its centre at ``(i + 0.5) / w``. Samples outside the map
read zeros.

The PyTorch core (``ms_deform_attn_core_pytorch``) runs anywhere. With ``impl="auto"`` and CUDA
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


def ms_deform_attn_core_pytorch(
    value: torch.Tensor,
    spatial_shapes: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Deformable attention by bilinear ``grid_sample`` (zero padding, pixel centres).

    Args:
        value: [N, S, M, Dh], the L levels flattened row-major and concatenated.
        spatial_shapes: [L, 2] long, (h, w) of each level; sum of h * w must be S.
        sampling_locations: [N, Lq, M, L, P, 2], (x, y) normalised to [0, 1] per level
            (values outside read zeros).
        attention_weights: [N, Lq, M, L, P], the weight of each sample.

    Returns:
        [N, Lq, M * Dh]: per head, the weighted sum of the samples over levels and points.
    """
    n, _, heads, dh = value.shape
    _, lq, _, levels, points, _ = sampling_locations.shape
    shapes: List[Tuple[int, int]] = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    if len(shapes) != levels:
        raise ValueError(f"spatial_shapes has {len(shapes)} levels, sampling_locations {levels}")
    sizes = [h * w for h, w in shapes]
    if sum(sizes) != value.shape[1]:
        raise ValueError(
            f"value has {value.shape[1]} positions, spatial_shapes sum to {sum(sizes)}"
        )
    value_per_level = value.split(sizes, dim=1)
    # grid_sample wants [-1, 1]; with align_corners=False, -1 and 1 are the outer pixel edges.
    grids = 2 * sampling_locations - 1
    sampled = []
    for lvl, (h, w) in enumerate(shapes):
        # [N, h*w, M, Dh] -> [N, M, Dh, h*w] -> [N*M, Dh, h, w]
        v = value_per_level[lvl].permute(0, 2, 3, 1).reshape(n * heads, dh, h, w)
        # [N, Lq, M, P, 2] -> [N, M, Lq, P, 2] -> [N*M, Lq, P, 2]
        g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        # -> [N*M, Dh, Lq, P]
        sampled.append(
            F.grid_sample(
                v, g.to(v.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
            )
        )
    # [N*M, Dh, Lq, L, P] -> [N*M, Dh, Lq, L*P]
    stacked = torch.stack(sampled, dim=-2).flatten(-2)
    # [N, Lq, M, L, P] -> [N, M, Lq, L*P] -> [N*M, 1, Lq, L*P]
    weights = attention_weights.transpose(1, 2).reshape(n * heads, 1, lq, levels * points)
    out = (stacked * weights.to(stacked.dtype)).sum(-1)  # [N*M, Dh, Lq]
    return out.view(n, heads * dh, lq).transpose(1, 2).contiguous()


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
    logger.info("MSDeformAttn: no fused kernel importable; using the PyTorch grid_sample core")
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
