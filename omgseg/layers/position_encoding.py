"""Sine position encodings shared by the pixel decoder, the mask decoder and location queries.

Shape shorthand: N = batch (frames folded in where noted), T = frames, C = channels,
H, W = feature height and width.
"""
import math
from typing import Optional

import torch
from torch import nn

from .constants import cached_constant

__all__ = ["PositionEmbeddingSine", "PositionEmbeddingSine3D", "coordinate_to_encoding"]


@cached_constant
def _wavelengths(num_pairs: int, temperature: float, device: torch.device) -> torch.Tensor:
    """[num_pairs] ``temperature ** (2 * i / (2 * num_pairs))``, the wavelength of each sin/cos
    feature pair."""
    i = torch.arange(num_pairs, dtype=torch.float32, device=device)
    return temperature ** (2 * i / (2 * num_pairs))


def _sine_features(coord: torch.Tensor, num_feats: int, temperature: float) -> torch.Tensor:
    """Encode ``coord`` (any shape [...]) as [..., num_feats] interleaved sin/cos features:
    features 2i and 2i + 1 are the sin and cos of ``coord / temperature ** (2i / num_feats)``
    (DETR's; num_feats even)."""
    if num_feats % 2:
        raise ValueError(f"num_feats must be even (sin/cos pairs), got {num_feats}")
    pos = coord[..., None] / _wavelengths(num_feats // 2, float(temperature), coord.device)
    return torch.stack((pos.sin(), pos.cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine(nn.Module):
    """DETR's normalised 2D sine embedding: [N, C, H, W] -> [N, 2 * num_pos_feats, H, W].

    Channels are the y features followed by the x features. Coordinates are cumulative sums over
    the unpadded area (``mask`` True = padding), normalised to (0, scale].
    """

    def __init__(
        self,
        num_pos_feats: int = 128,
        temperature: float = 10000.0,
        normalize: bool = True,
        scale: Optional[float] = None,
    ):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if mask is None:
            mask = torch.zeros(
                (x.shape[0], x.shape[2], x.shape[3]), device=x.device, dtype=torch.bool
            )
        not_mask = (~mask).to(torch.float32)
        y_embed = not_mask.cumsum(1)
        x_embed = not_mask.cumsum(2)
        if self.normalize:
            eps = 1e-6
            y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
            x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale
        pos_y = _sine_features(y_embed, self.num_pos_feats, self.temperature)
        pos_x = _sine_features(x_embed, self.num_pos_feats, self.temperature)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2).to(x.dtype)


class PositionEmbeddingSine3D(nn.Module):
    """Sine embedding over (t, y, x): [N, T, C, H, W] -> [N, T, 2 * num_pos_feats, H, W].

    The time term uses all ``2 * num_pos_feats`` channels and is added to the concatenated
    (y, x) terms (Mask2Former-VIS / mmdet ``SinePositionalEncoding3D``). With T = 1 the time term
    is a constant offset, so image and video inputs go through the same code.
    """

    def __init__(
        self,
        num_pos_feats: int = 128,
        temperature: float = 10000.0,
        normalize: bool = True,
        scale: Optional[float] = None,
    ):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _, h, w = x.shape
        ones = torch.ones((n, t, h, w), device=x.device, dtype=torch.float32)
        z_embed = ones.cumsum(1)
        y_embed = ones.cumsum(2)
        x_embed = ones.cumsum(3)
        if self.normalize:
            eps = 1e-6
            z_embed = z_embed / (z_embed[:, -1:] + eps) * self.scale
            y_embed = y_embed / (y_embed[:, :, -1:] + eps) * self.scale
            x_embed = x_embed / (x_embed[:, :, :, -1:] + eps) * self.scale
        pos_y = _sine_features(y_embed, self.num_pos_feats, self.temperature)
        pos_x = _sine_features(x_embed, self.num_pos_feats, self.temperature)
        pos_z = _sine_features(z_embed, 2 * self.num_pos_feats, self.temperature)
        pos = torch.cat((pos_y, pos_x), dim=-1) + pos_z
        return pos.permute(0, 1, 4, 2, 3).to(x.dtype)


@cached_constant
def _yx_order(size: int, device: torch.device) -> torch.Tensor:
    """Index of (y, x[, w, h]) in (x, y[, w, h]) coordinates."""
    return torch.tensor([1, 0, 2, 3][:size], device=device)


def coordinate_to_encoding(
    boxes_cxcywh: torch.Tensor, num_feats: int = 128, temperature: float = 10000.0
) -> torch.Tensor:
    """Sine-encode normalised boxes: [..., 4] (cx, cy, w, h in [0, 1]) -> [..., 4 * num_feats].

    Feature order is (y, x, w, h), as mmdet's ``coordinate_to_encoding`` that the official
    location queries use.
    """
    coords = boxes_cxcywh.to(torch.float32) * (2 * math.pi)
    order = _yx_order(boxes_cxcywh.shape[-1], coords.device)  # (y, x[, w, h])
    # all coordinates in one pass: [..., 4, num_feats] -> [..., 4 * num_feats]
    return _sine_features(coords.index_select(-1, order), num_feats, temperature).flatten(-2)
