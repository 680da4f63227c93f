"""The OpenCLIP visual tower (ConvNeXt or ModifiedResNet) as a Detectron2 backbone.

Only the visual tower is a registered submodule (``self.visual``): it is what ``parameters()``,
``state_dict()`` and checkpoints see. The text tower is kept outside the module tree (in the
unregistered ``clip_model`` attribute, which also references the same visual tower), always frozen
and in eval mode, and moved lazily to the device of the tokens given to ``encode_text``.
"""
import logging
from typing import Any, Dict, Optional

import torch
from torch import nn

from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone

from open_clip.modified_resnet import ModifiedResNet
from open_clip.timm_model import TimmModel

from ..clip.factory import build_clip_model, clip_model_key
from ..clip.text_encoder import encode_text

__all__ = ["OpenCLIPBackbone"]

logger = logging.getLogger(__name__)

_FEATURES = ("res2", "res3", "res4", "res5")
_STRIDES = (4, 8, 16, 32)


@BACKBONE_REGISTRY.register()
class OpenCLIPBackbone(Backbone):
    """Frozen (or trainable) OpenCLIP visual tower giving ``res2``..``res5`` at strides 4..32.

    ``forward(x [N, 3, H, W])`` takes images already normalised by the meta-architecture.

    * ConvNeXt (timm trunk, e.g. ``convnext_large_d_320``): ``trunk.stem`` then ``trunk.stages[i]``;
      ``res{i+2}`` is the output of stage ``i``.
    * ModifiedResNet (e.g. ``RN50``): the 3-conv stem + 2x2 average pool, then ``layer1..4``.

    Attributes: ``clip_model`` (the whole OpenCLIP model, NOT registered), ``tokenizer``,
    ``text_dim`` (D), ``model_key`` (text-cache key), ``freeze``, ``arch`` ("convnext" | "resnet").
    """

    @configurable
    def __init__(
        self,
        *,
        model_name: str,
        pretrained: str = "",
        freeze: bool = True,
        clip_model: Optional[nn.Module] = None,
        tokenizer: Any = None,
    ):
        """
        Args:
            model_name: OpenCLIP architecture (``MODEL.OMG.CLIP.MODEL_NAME``).
            pretrained: tag, local checkpoint path or "" (``MODEL.OMG.CLIP.PRETRAINED``).
            freeze: freeze the visual tower: no grads, always eval mode, forward under no_grad.
            clip_model, tokenizer: an already built OpenCLIP model / tokenizer to use instead of
                building ``model_name`` (``pretrained`` then only names the weights in
                ``model_key``).
        """
        super().__init__()
        if clip_model is None:
            clip_model, built_tokenizer = build_clip_model(model_name, pretrained)
            tokenizer = tokenizer if tokenizer is not None else built_tokenizer
        elif tokenizer is None:
            import open_clip

            tokenizer = open_clip.get_tokenizer(model_name)
        self.model_name = model_name
        self.pretrained = pretrained
        self.freeze = bool(freeze)

        visual = clip_model.visual
        trunk = getattr(visual, "trunk", None)
        if isinstance(visual, TimmModel) and hasattr(trunk, "stem") and hasattr(trunk, "stages"):
            self.arch = "convnext"
            channels = [int(info["num_chs"]) for info in visual.trunk.feature_info]
            strides = [int(info["reduction"]) for info in visual.trunk.feature_info]
            if len(channels) != 4 or tuple(strides) != _STRIDES:
                raise ValueError(
                    f"{model_name}: expected 4 ConvNeXt stages at strides {_STRIDES}, got {strides}"
                )
        elif isinstance(visual, ModifiedResNet):
            self.arch = "resnet"
            channels = [layer[-1].conv3.out_channels for layer in
                        (visual.layer1, visual.layer2, visual.layer3, visual.layer4)]
        else:
            raise NotImplementedError(
                f"OpenCLIPBackbone supports ConvNeXt (timm) and ModifiedResNet visual towers; "
                f"'{model_name}' has a {type(visual).__name__}"
            )

        # The text tower (and the rest of the CLIP model) stays outside the module tree.
        clip_model.eval()
        for p in clip_model.parameters():
            p.requires_grad_(False)
        object.__setattr__(self, "clip_model", clip_model)
        text_device = next(
            (p.device for n, p in clip_model.named_parameters() if not n.startswith("visual.")),
            torch.device("cpu"),
        )
        object.__setattr__(self, "_text_device", text_device)
        self.tokenizer = tokenizer

        # The visual tower is the registered part.
        self.visual = visual
        for p in self.visual.parameters():
            p.requires_grad_(not self.freeze)

        self._out_features = list(_FEATURES)
        self._out_feature_channels = dict(zip(_FEATURES, channels))
        self._out_feature_strides = dict(zip(_FEATURES, _STRIDES))
        self.text_dim = self._infer_text_dim()
        self.model_key = clip_model_key(model_name, pretrained, clip_model)
        self.train(self.training)

    @classmethod
    def from_config(cls, cfg, input_shape: Optional[ShapeSpec] = None):
        if input_shape is not None and input_shape.channels not in (None, 3):
            raise ValueError(
                f"OpenCLIPBackbone takes 3-channel RGB input, got {input_shape.channels}"
            )
        return {
            "model_name": cfg.MODEL.OMG.CLIP.MODEL_NAME,
            "pretrained": cfg.MODEL.OMG.CLIP.PRETRAINED,
            "freeze": cfg.MODEL.OMG.CLIP.FREEZE,
        }

    # ---- module behaviour --------------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            self.visual.eval()
        return self

    @property
    def size_divisibility(self) -> int:
        return 32

    @property
    def padding_constraints(self) -> Dict[str, int]:
        return {"size_divisibility": 32}

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }

    # ---- visual tower ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """x: [N, 3, H, W] normalised -> {"res2": [N, C2, H/4, W/4], ..., "res5": [N, C5, H/32,
        W/32]}."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"OpenCLIPBackbone expects [N, 3, H, W] input, got {tuple(x.shape)}")
        if self.freeze:
            with torch.no_grad():
                return self._forward_features(x)
        return self._forward_features(x)

    def _forward_features(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        out = {}
        if self.arch == "convnext":
            trunk = self.visual.trunk
            x = trunk.stem(x)
            for i, stage in enumerate(trunk.stages):
                x = stage(x)
                out[_FEATURES[i]] = x
        else:
            v = self.visual
            x = v.stem(x)  # conv1..3 + 2x2 average pool: stride 4
            for name, layer in zip(_FEATURES, (v.layer1, v.layer2, v.layer3, v.layer4)):
                x = layer(x)
                out[name] = x
        return out

    def clip_dense_features(self, features) -> torch.Tensor:
        """The dense res5-level map that ``clip_head`` expects, from ``res5`` (or the feature dict).

        ConvNeXt: ``trunk.norm_pre(res5)`` (an identity for the OpenCLIP ConvNeXt models, whose
        head norm sits in ``trunk.head`` and is applied by ``clip_head`` after pooling);
        ModifiedResNet: ``res5`` itself.
        """
        res5 = features["res5"] if isinstance(features, dict) else features
        if self.arch == "convnext":
            return self.visual.trunk.norm_pre(res5)
        return res5

    def clip_head(self, pooled: torch.Tensor) -> torch.Tensor:
        """Frozen CLIP visual head on mask-pooled res5 features: [..., C5] -> [..., D]
        (unnormalised).

        ConvNeXt: ``trunk.head`` on a 1x1 map (its average pool is then an identity; what remains is
        the head LayerNorm over channels; the classifier was removed by OpenCLIP), then
        ``visual.head`` (the MLP / linear projection to D).
        ModifiedResNet: an approximation of the attention pool, whose query/key attention needs the
        training-size grid: the value projection then the output projection of ``attnpool``
        (``c_proj(v_proj(pooled))``), i.e. attention pooling with all weight on the pooled token.
        """
        lead = pooled.shape[:-1]
        x = pooled.reshape(-1, pooled.shape[-1])
        if self.arch == "convnext":
            x = self.visual.trunk.forward_head(x[:, :, None, None])
            x = self.visual.head(x)
        else:
            attnpool = self.visual.attnpool
            x = attnpool.c_proj(attnpool.v_proj(x))
        return x.reshape(*lead, x.shape[-1])

    # ---- text tower --------------------------------------------------------------------------
    def _move_text_tower(self, device: torch.device) -> None:
        """Move every non-visual part of ``clip_model`` to ``device`` (the visual tower stays)."""
        if device == self._text_device:
            return
        clip_model = self.clip_model
        visual = clip_model._modules.pop("visual")
        try:
            clip_model.to(device)
        finally:
            clip_model._modules["visual"] = visual
        object.__setattr__(self, "_text_device", device)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [n, context] (from ``tokenizer``) -> text features [n, D] (not normalised), on
        the context trimmed to the longest prompt where that gives the same features."""
        self._move_text_tower(tokens.device)
        # clip_model.visual is self.visual: keep its mode (a trained backbone stays in train
        # mode when the text embeddings are computed in the middle of training).
        visual_training = self.visual.training
        self.clip_model.eval()
        self.visual.train(visual_training)
        with torch.no_grad():
            return encode_text(self.clip_model, tokens).float()

    def _infer_text_dim(self) -> int:
        proj = getattr(self.clip_model, "text_projection", None)
        if isinstance(proj, nn.Linear):
            return proj.out_features
        if isinstance(proj, torch.Tensor) and proj.ndim == 2:
            return int(proj.shape[1])
        text = getattr(self.clip_model, "text", None)
        if text is not None and getattr(text, "output_dim", None):
            return int(text.output_dim)
        tokens = self.tokenizer(["a"])
        return int(self.encode_text(tokens).shape[-1])

    def extra_repr(self) -> str:
        return (
            f"model_name={self.model_name!r}, pretrained={self.pretrained!r}, "
            f"freeze={self.freeze}"
        )
