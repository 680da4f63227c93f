"""Names of the official OMG-Seg head (lxtGH/OMG-Seg, MMDetection) <-> names in this model.

The released ``omg_seg_convl.pth`` / ``omg_seg_convxxl.pth`` hold the head only: 310 fp32 tensors
named as the mmdet ``Mask2FormerVideoHead`` state dict, under ``panoptic_head.`` in the full
model. The pixel decoder already uses the official names here; the mask decoder differs in
module names only (``OMGSeg.mask_decoder`` holds what the official head keeps at its top level
and in ``transformer_decoder``):

* ``transformer_decoder.layers.{i}``: the official layer runs cross-attention -> ``norms.0`` ->
  self-attention -> ``norms.1`` -> FFN -> ``norms.2`` (mmdet
  ``Mask2FormerTransformerDecoderLayer``); ours runs the same blocks in the same order, each
  block owning its norm, so ``norms.{0,1,2}`` are the norms of our cross / self / FFN blocks.
* mmcv ``FFN``: ``ffn.layers.0.0`` / ``ffn.layers.1`` are our ``linear1`` / ``linear2``.
* ``mask_embed`` / ``iou_embed`` / ``cls_proj`` are ``nn.Sequential(Linear, ReLU, Linear, ReLU,
  Linear)``: indices 0 / 2 / 4 are our ``MLP.layers.{0,1,2}``.
* ``transformer_decoder.post_norm`` is our ``decoder_norm``.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Pattern, Tuple

import torch

__all__ = [
    "OFFICIAL_PREFIX",
    "NAME_RULES",
    "official_to_ours",
    "ours_to_official",
    "convert_official_head",
    "to_official_head",
    "looks_like_official_head",
    "OfficialHead",
]

# Prefix of the head in the official full model (``OMGSeg.panoptic_head``).
OFFICIAL_PREFIX = "panoptic_head."

# Modules of this model that make up the head (everything but the backbone).
HEAD_MODULES = ("pixel_decoder.", "mask_decoder.")


def _name_rules() -> Tuple[Tuple[str, str], ...]:
    """``(official template, our template)``; ``{i}`` is a layer index, ``{rest}`` the suffix."""
    layer = "transformer_decoder.layers.{i}."
    ours = "mask_decoder.transformer_{}_layers.{{i}}."
    rules = [
        ("pixel_decoder.{rest}", "pixel_decoder.{rest}"),
        (layer + "cross_attn.attn.{rest}", ours.format("cross_attention") + "attn.{rest}"),
        (layer + "self_attn.attn.{rest}", ours.format("self_attention") + "attn.{rest}"),
        (layer + "norms.0.{rest}", ours.format("cross_attention") + "norm.{rest}"),
        (layer + "norms.1.{rest}", ours.format("self_attention") + "norm.{rest}"),
        (layer + "norms.2.{rest}", ours.format("ffn") + "norm.{rest}"),
        (layer + "ffn.layers.0.0.{rest}", ours.format("ffn") + "linear1.{rest}"),
        (layer + "ffn.layers.1.{rest}", ours.format("ffn") + "linear2.{rest}"),
        ("transformer_decoder.post_norm.{rest}", "mask_decoder.decoder_norm.{rest}"),
    ]
    for mlp in ("mask_embed", "iou_embed", "cls_proj"):
        for our_index, official_index in enumerate((0, 2, 4)):
            official = f"{mlp}.{official_index}.{{rest}}"
            rules.append((official, f"mask_decoder.{mlp}.layers.{our_index}.{{rest}}"))
    for same in (
        "query_feat", "query_embed", "level_embed", "mask_pooling_proj",
        "mask_tokens", "pb_embedding", "pos_linear",
    ):
        rules.append((f"{same}.{{rest}}", f"mask_decoder.{same}.{{rest}}"))
    return tuple(rules)


NAME_RULES = _name_rules()


def _compile(template: str) -> Pattern:
    parts = re.split(r"(\{i\}|\{rest\})", template)
    groups = {"{i}": r"(?P<i>\d+)", "{rest}": r"(?P<rest>.+)"}
    return re.compile("".join(groups.get(p, re.escape(p)) for p in parts))


def _fill(template: str, match: "re.Match") -> str:
    return template.replace("{i}", match.groupdict().get("i") or "").replace(
        "{rest}", match.group("rest")
    )


_FORWARD = [(_compile(official), ours) for official, ours in NAME_RULES]
_BACKWARD = [(_compile(ours), official) for official, ours in NAME_RULES]


def _apply(rules, name: str) -> Optional[str]:
    for pattern, template in rules:
        match = pattern.fullmatch(name)
        if match is not None:
            return _fill(template, match)
    return None


def official_to_ours(name: str) -> Optional[str]:
    """Our name of an official head tensor (given without ``panoptic_head.``); None if unknown."""
    return _apply(_FORWARD, name)


def ours_to_official(name: str) -> Optional[str]:
    """Official name (without ``panoptic_head.``) of one of our head tensors; None if unknown."""
    return _apply(_BACKWARD, name)


@dataclass
class OfficialHead:
    """An official head file translated to our names.

    ``state_dict``: our names -> tensors. ``prefix``: the prefix found on the official names
    (``"panoptic_head."`` or ``""``). ``unmapped``: the file's names that are not official head
    tensors (no rule applies, or outside the prefix).
    """

    state_dict: Dict[str, torch.Tensor]
    prefix: str
    unmapped: List[str] = field(default_factory=list)


def convert_official_head(state_dict: Mapping[str, torch.Tensor]) -> OfficialHead:
    """Rename an official head state dict (with or without ``panoptic_head.``) to our names."""
    prefix = OFFICIAL_PREFIX if any(k.startswith(OFFICIAL_PREFIX) for k in state_dict) else ""
    converted: Dict[str, torch.Tensor] = {}
    unmapped = []
    for name, tensor in state_dict.items():
        ours = official_to_ours(name[len(prefix):]) if name.startswith(prefix) else None
        if ours is None:
            unmapped.append(name)
        else:
            converted[ours] = tensor
    return OfficialHead(converted, prefix, unmapped)


def to_official_head(
    state_dict: Mapping[str, torch.Tensor], prefix: str = OFFICIAL_PREFIX
) -> Dict[str, torch.Tensor]:
    """The inverse: the head tensors of one of our state dicts under official names.

    Tensors outside the head (``backbone.*``) are left out; a head tensor without an official
    counterpart raises ``KeyError``.
    """
    out = {}
    for name, tensor in state_dict.items():
        if not name.startswith(HEAD_MODULES):
            continue
        official = ours_to_official(name)
        if official is None:
            raise KeyError(f"{name} has no counterpart in the official OMG-Seg head")
        out[prefix + official] = tensor
    return out


def looks_like_official_head(names: Iterable[str]) -> bool:
    """True for names in the official layout (e.g. an unconverted ``omg_seg_convl.pth``)."""
    return any(
        n.startswith(OFFICIAL_PREFIX) or n.startswith("transformer_decoder.layers.") for n in names
    )
