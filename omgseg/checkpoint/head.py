"""The head (pixel decoder + mask decoder) of a checkpoint, rebuilt without a backbone.

``HeadWidths.infer`` reads every shape-defining width off a head state dict in our names;
``build_head`` builds the registered pixel and mask decoders for those widths on fake backbone
``ShapeSpec`` s (no CLIP model is built or downloaded), so a file can be checked tensor by tensor
against exactly what ``OMGSeg`` would hold.
"""
import re
from dataclasses import asdict, dataclass
from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import nn

from detectron2.config import CfgNode, get_cfg
from detectron2.layers import ShapeSpec

from ..config import add_omgseg_config
from ..modeling.build import build_pixel_decoder, build_transformer_decoder

__all__ = ["HeadWidths", "build_head", "head_config", "KNOWN_VARIANTS", "REQUIRED_HEAD_TENSORS"]

# Backbone stage widths (res2..res5) and CLIP text dim of the released heads.
KNOWN_VARIANTS = {
    ((192, 384, 768, 1536), 768): ("convnext_large", "configs/omg_convnext_large.yaml"),
    ((384, 768, 1536, 3072), 1024): ("convnext_xxlarge", "configs/omg_convnext_xxlarge.yaml"),
}

_PD = "pixel_decoder."
_MD = "mask_decoder."
# The tensors whose shapes give the widths (our names).
REQUIRED_HEAD_TENSORS = (
    _PD + "input_convs.0.conv.weight",
    _PD + "input_convs.1.conv.weight",
    _PD + "input_convs.2.conv.weight",
    _PD + "lateral_convs.0.conv.weight",
    _PD + "mask_feature.weight",
    _PD + "encoder.layers.0.self_attn.attention_weights.weight",
    _PD + "encoder.layers.0.ffn.layers.0.0.weight",
    _MD + "query_feat.weight",
    _MD + "transformer_ffn_layers.0.linear1.weight",
    _MD + "cls_proj.layers.2.weight",
)

# Stride of each backbone feature the official head reads (res2 feeds the FPN step).
_STRIDES = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}


def _count_layers(names: Sequence[str], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for m in map(pattern.match, names) if m}
    return max(indices) + 1 if indices else 0


@dataclass(frozen=True)
class HeadWidths:
    """Everything that sets a tensor shape in the head.

    ``backbone_channels``: res2..res5 channels. ``enc_heads_x_points``: deformable heads times
    sampling points per head and level (only their product shapes a tensor).
    """

    backbone_channels: tuple
    text_dim: int
    conv_dim: int
    mask_dim: int
    hidden_dim: int
    num_queries: int
    enc_layers: int
    enc_dim_feedforward: int
    enc_heads_x_points: int
    dec_layers: int
    dim_feedforward: int

    @classmethod
    def infer(cls, state_dict: Mapping[str, torch.Tensor]) -> "HeadWidths":
        """Widths of a head state dict in our names; ``KeyError`` lists the missing tensors."""
        missing = [k for k in REQUIRED_HEAD_TENSORS if k not in state_dict]
        if missing:
            raise KeyError(missing)
        shape = {k: tuple(state_dict[k].shape) for k in REQUIRED_HEAD_TENSORS}
        names = list(state_dict)
        input_convs = [shape[_PD + f"input_convs.{i}.conv.weight"] for i in range(3)]
        return cls(
            # input_convs run from the coarsest level (res5) to the finest (res3)
            backbone_channels=(shape[_PD + "lateral_convs.0.conv.weight"][1],)
            + tuple(s[1] for s in reversed(input_convs)),
            text_dim=shape[_MD + "cls_proj.layers.2.weight"][0],
            conv_dim=input_convs[0][0],
            mask_dim=shape[_PD + "mask_feature.weight"][0],
            hidden_dim=shape[_MD + "query_feat.weight"][1],
            num_queries=shape[_MD + "query_feat.weight"][0],
            enc_layers=_count_layers(names, _PD + "encoder.layers."),
            enc_dim_feedforward=shape[_PD + "encoder.layers.0.ffn.layers.0.0.weight"][0],
            enc_heads_x_points=shape[_PD + "encoder.layers.0.self_attn.attention_weights.weight"][0]
            // 3,
            dec_layers=_count_layers(names, _MD + "transformer_ffn_layers."),
            dim_feedforward=shape[_MD + "transformer_ffn_layers.0.linear1.weight"][0],
        )

    @property
    def variant(self) -> Optional[str]:
        """``convnext_large`` / ``convnext_xxlarge`` for the released heads, else None."""
        known = KNOWN_VARIANTS.get((tuple(self.backbone_channels), self.text_dim))
        return known[0] if known else None

    @property
    def config_file(self) -> Optional[str]:
        """The repository config that builds this head, for the released heads."""
        known = KNOWN_VARIANTS.get((tuple(self.backbone_channels), self.text_dim))
        return known[1] if known else None

    def as_dict(self) -> Dict[str, object]:
        d = asdict(self)
        d["backbone_channels"] = list(self.backbone_channels)
        return d

    def input_shape(self) -> Dict[str, ShapeSpec]:
        """Fake backbone outputs res2..res5 with these channels."""
        return {
            name: ShapeSpec(channels=int(c), stride=_STRIDES[name])
            for name, c in zip(("res2", "res3", "res4", "res5"), self.backbone_channels)
        }


def head_config(widths: HeadWidths, base: Optional[CfgNode] = None) -> CfgNode:
    """``base`` (default: the official defaults) with the head widths set to ``widths``.

    Head counts do not shape any tensor; they are only adjusted so that the widths divide.
    """
    cfg = base.clone() if base is not None else get_cfg()
    if base is None:
        add_omgseg_config(cfg)
    cfg.defrost()
    omg = cfg.MODEL.OMG
    points = omg.ENC_POINTS if widths.enc_heads_x_points % omg.ENC_POINTS == 0 else 1
    omg.ENC_POINTS = points
    omg.ENC_HEADS = widths.enc_heads_x_points // points
    omg.NHEADS = omg.NHEADS if widths.hidden_dim % omg.NHEADS == 0 else 1
    omg.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    omg.DEFORMABLE_IN_FEATURES = ["res3", "res4", "res5"]
    omg.CONVS_DIM = widths.conv_dim
    omg.MASK_DIM = widths.mask_dim
    omg.HIDDEN_DIM = widths.hidden_dim
    omg.NUM_OBJECT_QUERIES = widths.num_queries
    omg.ENC_LAYERS = widths.enc_layers
    omg.ENC_DIM_FEEDFORWARD = widths.enc_dim_feedforward
    omg.DEC_LAYERS = widths.dec_layers
    omg.DIM_FEEDFORWARD = widths.dim_feedforward
    cfg.freeze()
    return cfg


def build_head(
    widths: HeadWidths, base: Optional[CfgNode] = None, device: str = "cpu"
) -> nn.ModuleDict:
    """``{"pixel_decoder", "mask_decoder"}`` as ``OMGSeg`` builds them, random init.

    Its ``state_dict()`` names are those of the full model (``pixel_decoder.*``,
    ``mask_decoder.*``). ``device="meta"`` gives names and shapes only, without allocating or
    initialising any weight.
    """
    cfg = head_config(widths, base)
    with torch.device(device):
        return nn.ModuleDict(
            {
                "pixel_decoder": build_pixel_decoder(cfg, widths.input_shape()),
                "mask_decoder": build_transformer_decoder(
                    cfg, in_channels=cfg.MODEL.OMG.CONVS_DIM, text_dim=widths.text_dim
                ),
            }
        )
