"""Prompts -> location queries of the shared decoder (no parameters of its own).

Every prompt becomes one query (the official location queries of ``prepare_for_dn_mo``):

* position: its box normalised by the image size to (cx, cy, w, h) in [0, 1], sine-encoded and
  projected by the decoder's ``pos_linear`` (``encode_box_prompts``); in training the box is
  jittered by ``U(-1, 1) * noise_scale * noise_factor * (w/2, h/2, w, h)`` and clamped to
  [0, 1] (official: noise_scale 0.4, factor 0.01);
* content: ``pb_embedding[type] + mask_tokens`` with type 0 for boxes and region prompts and
  ``point_type`` for points (1 here; the released official weights were trained with 0 for every
  prompt); a region prompt (scribble / polygon / mask) adds the pixel-decoder mask features
  averaged inside its raster, through the decoder's ``mask_pooling_proj`` (the LayerNorm +
  Linear of the classifier's mask pooling). With ``pool_boxes`` (``MODEL.OMG.PROMPT.
  POOL_BOX_FEATURES``, not official) point and box prompts add the features averaged inside
  their box the same way: the query then knows *what* is under the prompt from the first layer,
  not only *where* it is, which a small model learns far sooner than the positional route.

Queries see only themselves in self-attention (identity mask), so the prompts of one image are
answered in one forward and each answer is independent of the others. Images of a batch with
fewer prompts are padded with inert queries (``valid`` False).

Shape shorthand: B images, P prompts (padded), C decoder width, C_m mask-feature channels,
H x W padded input, h x w = mask-feature size (H/4 x W/4).
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.nn import functional as F

from ...data.prompts import Prompts
from ...layers.constants import cached_constant
from ...layers.direct_call import call_layer
from ..transformer_decoder.omg_decoder import identity_self_attn_mask

__all__ = [
    "LocationQueries",
    "normalized_cxcywh",
    "jitter_boxes",
    "pool_region_features",
    "pool_box_features",
    "encode_prompts",
]


class LocationQueries(NamedTuple):
    """Decoder inputs of a batch of prompt sets."""

    content: Tensor  # [B, P, C]
    pos: Tensor  # [B, P, C]
    valid: Tensor  # bool [B, P]: False for padding
    num_heads: int  # of the decoder's attention

    @property
    def self_attn_mask(self) -> Tensor:
        """bool [B*heads, P, P], the identity: each query sees only itself (the decoder runs it
        as ``independent_queries``, without building this mask)."""
        b, p = self.valid.shape
        return identity_self_attn_mask(b, p, self.num_heads, device=self.valid.device)


def normalized_cxcywh(boxes_xyxy: Tensor, image_size: Tuple[int, int]) -> Tensor:
    """[P, 4] pixel ``xyxy`` boxes of an image of ``image_size`` (H, W) -> (cx, cy, w, h) divided
    by (W, H, W, H) and clamped to [0, 1] (official: ``bbox_xyxy_to_cxcywh(boxes / img_shape)``,
    clamped by ``inverse_sigmoid``)."""
    # one product with the matrix of xyxy -> cxcywh, scaled: [x0, y0, x1, y1] @ M
    to_cxcywh = _cxcywh_matrix(int(image_size[0]), int(image_size[1]), boxes_xyxy.dtype,
                               boxes_xyxy.device)
    return (boxes_xyxy @ to_cxcywh).clamp(0.0, 1.0)


@cached_constant
def _cxcywh_matrix(h: int, w: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """[4, 4] M with ``xyxy @ M = (cx / W, cy / H, w / W, h / H)``."""
    return torch.tensor([[0.5 / w, 0, -1 / w, 0], [0, 0.5 / h, 0, -1 / h],
                         [0.5 / w, 0, 1 / w, 0], [0, 0.5 / h, 0, 1 / h]],
                        dtype=dtype, device=device)


def jitter_boxes(
    cxcywh: Tensor, noise_scale: float, noise_factor: float,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Official training jitter: ``cxcywh + U(-1, 1) * noise_scale * noise_factor * (w/2, h/2,
    w, h)``, clamped to [0, 1]."""
    if noise_scale <= 0 or noise_factor <= 0:
        return cxcywh
    wh = cxcywh[..., 2:]
    diff = torch.cat([wh / 2, wh], dim=-1) * noise_factor
    uniform = torch.rand(cxcywh.shape, generator=generator, device=cxcywh.device)
    return (cxcywh + (uniform.to(cxcywh) * 2 - 1) * diff * noise_scale).clamp(0.0, 1.0)


def pool_region_features(mask_features: Tensor, regions: Tensor) -> Tensor:
    """Average mask features inside region rasters.

    Args:
        mask_features: [C_m, h, w] of one frame (stride s of the padded input).
        regions: bool [R, H_r, W_r] rasters at input resolution, top-left aligned with the padded
            input (H_r <= h * s, W_r <= w * s).

    Returns:
        [R, C_m]: the features weighted by the fraction of each feature cell the region covers
        (area pooling of the raster, padded to h * s x w * s); a region is never empty.
    """
    c, h, w = mask_features.shape
    r, hr, wr = regions.shape
    if r == 0:
        return mask_features.new_zeros((0, c))
    stride_h, stride_w = -(-hr // h), -(-wr // w)
    padded = regions.new_zeros((r, h * stride_h, w * stride_w), dtype=mask_features.dtype)
    padded[:, :hr, :wr] = regions.to(mask_features.dtype)
    weights = F.avg_pool2d(padded[:, None], (stride_h, stride_w))[:, 0].flatten(1)  # [R, h*w]
    pooled = weights @ mask_features.flatten(1).t()
    return pooled / weights.sum(1, keepdim=True).clamp(min=1e-8)


@cached_constant
def _cell_edges(n: int, dtype: torch.dtype, device: torch.device) -> Tuple[Tensor, Tensor]:
    """([n] starts 0..n-1, [n] ends 1..n) of unit cells."""
    edges = torch.arange(n + 1, dtype=dtype, device=device)
    return edges[:-1], edges[1:]


def pool_box_features(mask_features: Tensor, boxes_xyxy: Tensor, stride: float) -> Tensor:
    """Average mask features inside boxes, each feature cell weighted by the fraction of it the
    box covers (the area pooling of the box's raster, computed per axis).

    Args:
        mask_features: [C_m, h, w] of one frame; cell (i, j) covers pixels
            [i * stride, (i + 1) * stride) x [j * stride, (j + 1) * stride) of the input.
        boxes_xyxy: [P, 4] boxes in input pixels (top-left aligned with the padded input).

    Returns:
        [P, C_m]; a box smaller than a cell still gets the features of the cells it touches.
    """
    c, h, w = mask_features.shape
    if boxes_xyxy.shape[0] == 0:
        return mask_features.new_zeros((0, c))
    lo, hi = (boxes_xyxy.to(mask_features).view(-1, 2, 2, 1) / float(stride)).unbind(1)
    starts, ends = _cell_edges(max(h, w), lo.dtype, lo.device)
    # length of [lo, hi) inside [cell, cell + 1) per axis (x, y): [P, 2, max(h, w)]
    cover = (torch.minimum(hi, ends) - torch.maximum(lo, starts)).clamp_(min=0)
    weights = (cover[:, 1, :h, None] * cover[:, 0, None, :w]).flatten(1)  # [P, h*w]
    pooled = weights @ mask_features.flatten(1).t()
    return pooled / weights.sum(1, keepdim=True).clamp(min=1e-8)


def _pooled_prompt_features(
    s: Prompts, features: Tensor, p: int, pool_boxes: bool, stride: int
) -> Optional[Tuple[Tensor, Optional[Tensor]]]:
    """The mask features pooled for the prompts of one set: ([p, C_m] rows, [p, 1] float marking
    the rows that have them, or None when all p do), or None when no prompt pools features.
    ``features``: [C_m, h, w] of the prompted frame."""
    has_regions = s.regions is not None and len(s.regions) > 0
    if not has_regions and not (pool_boxes and len(s)):
        return None
    device = features.device
    if not has_regions and len(s) == p:  # every prompt pools its box: no scatter
        return pool_box_features(features, s.boxes.to(device), stride), None
    rows = features.new_zeros((p, features.shape[0]))
    has = features.new_zeros((p, 1))
    if has_regions:
        index = s.region_index.to(device)
        rows[index] = pool_region_features(features, s.regions.to(device))
        has[index] = 1.0
    if pool_boxes:
        plain = (~s.has_region).nonzero().flatten().to(device)
        if len(plain):
            rows[plain] = pool_box_features(features, s.boxes.to(device)[plain], stride)
            has[plain] = 1.0
    return rows, has


def encode_prompts(
    decoder,
    prompts: Sequence[Prompts],
    mask_features: Tensor,
    *,
    point_type: int = 1,
    noise_scale: float = 0.0,
    noise_factor: float = 0.01,
    generator: Optional[torch.Generator] = None,
    pool_boxes: bool = False,
    mask_stride: int = 4,
) -> LocationQueries:
    """Location queries of a batch of prompt sets.

    Args:
        decoder: the ``OMGMaskDecoder`` (its ``encode_box_prompts``, ``mask_pooling_proj``,
            ``num_heads``).
        prompts: B prompt sets, each in pixels of its image (``Prompts.image_size``).
        mask_features: [B, T, C_m, h, w]; region prompts pool frame 0 (the prompted frame).
        point_type: ``pb_embedding`` row of point prompts.
        noise_scale / noise_factor: training box jitter (0: none).
        generator: random generator of the jitter.
        pool_boxes: also add the features pooled inside the box of point and box prompts.
        mask_stride: input pixels per mask-feature cell (``MODEL.OMG.COMMON_STRIDE``).

    Returns:
        :class:`LocationQueries` with P = max(1, largest prompt set).
    """
    b = len(prompts)
    if mask_features.dim() != 5 or mask_features.shape[0] != b:
        raise ValueError(f"mask_features must be [B={b}, T, C, h, w], got "
                         f"{tuple(mask_features.shape)}")
    device = mask_features.device
    p = max([1] + [len(s) for s in prompts])
    if b == 1 and len(prompts[0]) == p:  # the predictor's case: no padding
        s = prompts[0]
        boxes = normalized_cxcywh(s.boxes.to(device), s.image_size)[None]
        types = torch.tensor([[point_type if k == "point" else 0 for k in s.kinds]],
                             device=device)
        valid = torch.ones((1, p), dtype=torch.bool, device=device)
    else:
        boxes = torch.tensor([0.5, 0.5, 1.0, 1.0], device=device).repeat(b, p, 1)
        types = torch.zeros((b, p), dtype=torch.long, device=device)
        valid = torch.zeros((b, p), dtype=torch.bool, device=device)
        for i, s in enumerate(prompts):
            n = len(s)
            if n == 0:
                continue
            boxes[i, :n] = normalized_cxcywh(s.boxes.to(device), s.image_size)
            types[i, :n] = torch.tensor([point_type if k == "point" else 0 for k in s.kinds],
                                        device=device)
            valid[i, :n] = True
    if noise_scale > 0:
        boxes = jitter_boxes(boxes, noise_scale, noise_factor, generator)
    content, pos = decoder.encode_box_prompts(boxes, types)
    extra = None
    for i, s in enumerate(prompts):
        pooled = _pooled_prompt_features(s, mask_features[i, 0], p, pool_boxes, mask_stride)
        if pooled is None:
            continue
        rows, has = pooled
        proj = call_layer(decoder.mask_pooling_proj, rows)
        if has is not None:
            proj = proj * has
        if b == 1:
            extra = proj[None]
        else:
            if extra is None:
                extra = torch.zeros_like(content)
            extra[i] = proj
    if extra is not None:
        content = content + extra
    return LocationQueries(content, pos, valid, int(decoder.num_heads))
