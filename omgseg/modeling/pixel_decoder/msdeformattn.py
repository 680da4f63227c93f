"""``MSDeformAttnPixelDecoder``: deformable-attention encoder on res3..res5, FPN step on res2.

Shape shorthand: N = frames (B clips * T frames), C = ``conv_dim``, H x W = padded input size,
h_l x w_l = size of encoder level l, S = sum of h_l * w_l.

Parameter names follow the official (mmdet) checkpoint: ``input_convs.{i}.conv/gn``,
``encoder.layers.{i}.self_attn.*``, ``encoder.layers.{i}.ffn.layers.{0.0,1}``,
``encoder.layers.{i}.norms.{0,1}``, ``level_encoding``, ``lateral_convs.{i}.conv/gn``,
``output_convs.{i}.conv/gn``, ``mask_feature``. Encoder levels (and ``input_convs``,
``level_encoding`` rows) run from the coarsest feature to the finest.
"""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import fvcore.nn.weight_init as weight_init
import torch
from torch import nn
from torch.nn import functional as F

from detectron2.config import configurable
from detectron2.layers import ShapeSpec, get_norm

from ...layers.ms_deform_attn import MSDeformAttn
from ...layers.position_encoding import PositionEmbeddingSine
from ..build import PIXEL_DECODER_REGISTRY

__all__ = [
    "MSDeformAttnPixelDecoder",
    "MSDeformAttnEncoder",
    "MSDeformAttnEncoderLayer",
    "ConvNormAct",
]

logger = logging.getLogger(__name__)


class ConvNormAct(nn.Module):
    """Conv2d -> optional norm -> optional ReLU (mmcv ``ConvModule`` layout: ``conv``, ``gn``).

    ``bias=None`` (mmcv's ``bias="auto"``) gives the conv a bias only when there is no norm. The
    norm submodule is called ``gn`` for ``"GN"`` (as in the official checkpoint) and ``norm``
    otherwise.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        norm: str = "GN",
        activation: bool = False,
        bias: Optional[bool] = None,
    ):
        super().__init__()
        norm_layer = get_norm(norm, out_channels) if norm else None
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=norm_layer is None if bias is None else bias,
        )
        self.norm_name: Optional[str] = None
        if norm_layer is not None:
            self.norm_name = "gn" if norm == "GN" else "norm"
            self.add_module(self.norm_name, norm_layer)
        self.activation = nn.ReLU(inplace=True) if activation else None
        weight_init.c2_xavier_fill(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm_name is not None:
            x = getattr(self, self.norm_name)(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class _FFN(nn.Module):
    """Linear -> ReLU -> Dropout -> Linear -> Dropout (mmcv ``FFN`` layout, no residual)."""

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(
                nn.Linear(d_model, dim_feedforward), nn.ReLU(inplace=True), nn.Dropout(dropout)
            ),
            nn.Linear(dim_feedforward, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MSDeformAttnEncoderLayer(nn.Module):
    """Post-norm encoder layer: deformable self-attention -> add & LayerNorm -> FFN -> add & LN."""

    def __init__(
        self,
        d_model: int = 256,
        dim_feedforward: int = 1024,
        dropout: float = 0.0,
        n_levels: int = 3,
        n_heads: int = 8,
        n_points: int = 4,
        deform_attn_impl: str = "auto",
    ):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points, impl=deform_attn_impl)
        self.dropout = nn.Dropout(dropout)
        self.ffn = _FFN(d_model, dim_feedforward, dropout)
        self.norms = nn.ModuleList([nn.LayerNorm(d_model), nn.LayerNorm(d_model)])

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        reference_points: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        padding_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """src, pos: [N, S, C]; reference_points: [N, S, L, 2]; returns [N, S, C]."""
        attn = self.self_attn(
            src + pos, reference_points, src, spatial_shapes, level_start_index, padding_mask
        )
        src = self.norms[0](src + self.dropout(attn))
        return self.norms[1](src + self.ffn(src))


class MSDeformAttnEncoder(nn.Module):
    """A stack of ``MSDeformAttnEncoderLayer`` (``layers.{i}``) over flattened multi-level maps."""

    def __init__(self, num_layers: int, **layer_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(
            [MSDeformAttnEncoderLayer(**layer_kwargs) for _ in range(num_layers)]
        )

    @staticmethod
    def get_reference_points(
        spatial_shapes: Sequence[Tuple[int, int]],
        device: torch.device,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Normalised pixel centres ((j + 0.5) / w, (i + 0.5) / h) of every level: [S, 2] (x, y).

        There are no padding masks (valid ratio 1), so each query uses the same point on every
        level; callers expand the result to [N, S, L, 2].
        """
        points = []
        for h, w in spatial_shapes:
            ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
            xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
            ref_y, ref_x = torch.meshgrid(ys, xs, indexing="ij")
            points.append(torch.stack((ref_x.reshape(-1), ref_y.reshape(-1)), dim=-1))
        return torch.cat(points, dim=0)

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        padding_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """
        Args:
            src, pos: [N, S, C] flattened features and (position + level) embeddings.
            spatial_shapes: [L, 2] long (h, w); level_start_index: [L] long.
            padding_mask: optional [N, S] bool (True = padding).

        Returns:
            memory [N, S, C].
        """
        n = src.shape[0]
        levels = spatial_shapes.shape[0]
        shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
        ref = self.get_reference_points(shapes, src.device, src.dtype)
        reference_points = ref[None, :, None, :].expand(n, -1, levels, -1)
        out = src
        for layer in self.layers:
            out = layer(out, pos, reference_points, spatial_shapes, level_start_index, padding_mask)
        return out


@PIXEL_DECODER_REGISTRY.register()
class MSDeformAttnPixelDecoder(nn.Module):
    """Deformable-attention pixel decoder (Mask2Former / official OMG-Seg).

    The ``transformer_in_features`` (res3..res5) are projected to ``conv_dim`` (1x1 conv + norm),
    given a sine position embedding plus a learned level embedding and refined jointly by the
    deformable encoder. The finer features (res2) then get FPN steps (lateral 1x1 conv + upsampled
    coarser map -> 3x3 conv + norm + ReLU) down to ``common_stride``; a 1x1 conv of the finest
    map gives the mask features.
    """

    @configurable
    def __init__(
        self,
        *,
        input_shape: Dict[str, ShapeSpec],
        transformer_in_features: List[str],
        conv_dim: int,
        mask_dim: int,
        norm: str = "GN",
        transformer_dropout: float = 0.0,
        transformer_nheads: int = 8,
        transformer_dim_feedforward: int = 1024,
        transformer_enc_layers: int = 6,
        transformer_n_points: int = 4,
        common_stride: int = 4,
        deform_attn_impl: str = "auto",
    ):
        """
        Args:
            input_shape: the backbone features the decoder reads (e.g. res2..res5), with
                channels and strides.
            transformer_in_features: the subset that goes through the deformable encoder.
            conv_dim: decoder width C. mask_dim: channels of the mask features.
            norm: norm of the convolutions ("GN": GroupNorm(32), "" for none).
            transformer_*: encoder dropout / heads / FFN width / layers / points per head and level.
            common_stride: stride of the mask features.
            deform_attn_impl: "auto" (fused CUDA kernel if importable) or "pytorch".
        """
        super().__init__()
        missing = [f for f in transformer_in_features if f not in input_shape]
        if missing:
            raise ValueError(
                f"transformer_in_features {missing} are not in input_shape {sorted(input_shape)}"
            )
        # All features, finest first.
        shapes = sorted(input_shape.items(), key=lambda kv: kv[1].stride)
        self.in_features = [k for k, _ in shapes]
        # Encoder levels, coarsest first (strides 32, 16, 8).
        tr_shapes = sorted(
            ((k, v) for k, v in input_shape.items() if k in transformer_in_features),
            key=lambda kv: kv[1].stride,
            reverse=True,
        )
        self.transformer_in_features = [k for k, _ in tr_shapes]
        self.transformer_feature_strides = [v.stride for _, v in tr_shapes]
        self.num_encoder_levels = len(tr_shapes)
        min_tr_stride = min(self.transformer_feature_strides)
        # FPN levels: finer than the encoder, not finer than common_stride; coarsest first.
        fpn_shapes = [
            (k, v)
            for k, v in reversed(shapes)
            if k not in transformer_in_features and common_stride <= v.stride < min_tr_stride
        ]
        self.fpn_in_features = [k for k, _ in fpn_shapes]
        self.common_stride = common_stride
        self.conv_dim = conv_dim
        self.mask_dim = mask_dim
        # Number of multi-scale maps handed to the mask decoder.
        self.num_outs = min(3, self.num_encoder_levels)

        # The input projections keep their conv bias next to the norm, as in Mask2Former and the
        # official (mmdet) decoder, whose checkpoints hold ``input_convs.{i}.conv.bias``.
        self.input_convs = nn.ModuleList(
            [ConvNormAct(v.channels, conv_dim, 1, norm=norm, bias=True) for _, v in tr_shapes]
        )
        for proj in self.input_convs:
            nn.init.xavier_uniform_(proj.conv.weight, gain=1)
            nn.init.constant_(proj.conv.bias, 0)
        self.encoder = MSDeformAttnEncoder(
            transformer_enc_layers,
            d_model=conv_dim,
            dim_feedforward=transformer_dim_feedforward,
            dropout=transformer_dropout,
            n_levels=self.num_encoder_levels,
            n_heads=transformer_nheads,
            n_points=transformer_n_points,
            deform_attn_impl=deform_attn_impl,
        )
        self.positional_encoding = PositionEmbeddingSine(conv_dim // 2, normalize=True)
        self.level_encoding = nn.Embedding(self.num_encoder_levels, conv_dim)
        self.lateral_convs = nn.ModuleList(
            [ConvNormAct(v.channels, conv_dim, 1, norm=norm) for _, v in fpn_shapes]
        )
        self.output_convs = nn.ModuleList(
            [ConvNormAct(conv_dim, conv_dim, 3, norm=norm, activation=True) for _ in fpn_shapes]
        )
        self.mask_feature = nn.Conv2d(conv_dim, mask_dim, kernel_size=1)
        self._reset_encoder_parameters()
        weight_init.c2_xavier_fill(self.mask_feature)

    def _reset_encoder_parameters(self) -> None:
        for p in self.encoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.encoder.modules():
            if isinstance(m, MSDeformAttn):
                m.reset_parameters()
        nn.init.normal_(self.level_encoding.weight)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        omg = cfg.MODEL.OMG
        missing = [k for k in omg.IN_FEATURES if k not in input_shape]
        if missing:
            raise ValueError(
                f"MODEL.OMG.IN_FEATURES {missing} are not produced by the backbone "
                f"({sorted(input_shape)})"
            )
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in omg.IN_FEATURES},
            "transformer_in_features": list(omg.DEFORMABLE_IN_FEATURES),
            "conv_dim": omg.CONVS_DIM,
            "mask_dim": omg.MASK_DIM,
            "norm": omg.NORM,
            "transformer_dropout": omg.DROPOUT,
            "transformer_nheads": omg.ENC_HEADS,
            "transformer_dim_feedforward": omg.ENC_DIM_FEEDFORWARD,
            "transformer_enc_layers": omg.ENC_LAYERS,
            "transformer_n_points": omg.ENC_POINTS,
            "common_stride": omg.COMMON_STRIDE,
            "deform_attn_impl": omg.DEFORM_ATTN_IMPL,
        }

    def forward_features(
        self, features: Dict[str, torch.Tensor]
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """
        Args:
            features: backbone maps {name: [N, C_name, h, w]} (N = B*T frames); any h, w
                (inputs need not be multiples of 32). Runs in fp32 with autocast disabled.

        Returns:
            mask_features: [N, mask_dim, h_c, w_c], h_c x w_c = size of the finest FPN feature
                (H/4 x W/4 for res2 and common_stride 4).
            multi_scale_features: ``num_outs`` (3) maps [N, conv_dim, h_l, w_l], the encoder
                outputs from the coarsest level (stride 32) to the finest (stride 8).
        """
        first = features[self.transformer_in_features[0]]
        with torch.autocast(device_type=first.device.type, enabled=False):
            return self._forward_fp32(features)

    def forward(self, features: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Same as ``forward_features``."""
        return self.forward_features(features)

    def _forward_fp32(
        self, features: Dict[str, torch.Tensor]
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        srcs, pos_embeds, shapes = [], [], []
        for lvl, name in enumerate(self.transformer_in_features):
            x = features[name].float()
            proj = self.input_convs[lvl](x)  # [N, C, h, w]
            pos = self.positional_encoding(proj) + self.level_encoding.weight[lvl].view(1, -1, 1, 1)
            shapes.append(proj.shape[-2:])
            srcs.append(proj.flatten(2).transpose(1, 2))  # [N, h*w, C]
            pos_embeds.append(pos.flatten(2).transpose(1, 2))
        src = torch.cat(srcs, dim=1)  # [N, S, C]
        pos = torch.cat(pos_embeds, dim=1)
        device = src.device
        spatial_shapes = torch.as_tensor(
            [tuple(s) for s in shapes], dtype=torch.long, device=device
        )  # [L, 2]
        sizes = [int(h) * int(w) for h, w in shapes]
        level_start_index = torch.as_tensor(
            [0] + sizes[:-1], dtype=torch.long, device=device
        ).cumsum(0)

        memory = self.encoder(src, pos, spatial_shapes, level_start_index)  # [N, S, C]
        n = memory.shape[0]
        outs = [
            m.transpose(1, 2).reshape(n, self.conv_dim, h, w)
            for m, (h, w) in zip(memory.split(sizes, dim=1), shapes)
        ]

        # FPN steps on the finer features, coarsest first.
        for idx, name in enumerate(self.fpn_in_features):
            x = features[name].float()
            lateral = self.lateral_convs[idx](x)
            y = lateral + F.interpolate(
                outs[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False
            )
            outs.append(self.output_convs[idx](y))

        return self.mask_feature(outs[-1]), outs[: self.num_outs]
