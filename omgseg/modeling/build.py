"""Registries of the OMG-Seg heads.

The backbone lives in Detectron2's ``BACKBONE_REGISTRY`` and the model in
``META_ARCH_REGISTRY``; the two heads get registries of their own.
"""
from detectron2.layers import ShapeSpec
from detectron2.utils.registry import Registry

__all__ = [
    "PIXEL_DECODER_REGISTRY",
    "TRANSFORMER_DECODER_REGISTRY",
    "build_pixel_decoder",
    "build_transformer_decoder",
]

PIXEL_DECODER_REGISTRY = Registry("PIXEL_DECODER")
PIXEL_DECODER_REGISTRY.__doc__ = """
Pixel decoders: ``cls(cfg, input_shape: Dict[str, ShapeSpec])``; ``forward_features(features)``
returns ``(mask_features [N, MASK_DIM, H/4, W/4], multi_scale_features)`` where
``multi_scale_features`` lists 3 maps [N, CONVS_DIM, h, w] from stride 32 to stride 8.
"""

TRANSFORMER_DECODER_REGISTRY = Registry("TRANSFORMER_DECODER")
TRANSFORMER_DECODER_REGISTRY.__doc__ = """
Mask decoders: ``cls(cfg, in_channels: int, text_dim: int)``; see
``omgseg.modeling.transformer_decoder.OMGMaskDecoder.forward`` for the call signature.
"""


def build_pixel_decoder(cfg, input_shape: "dict[str, ShapeSpec]"):
    name = cfg.MODEL.OMG.PIXEL_DECODER_NAME
    return PIXEL_DECODER_REGISTRY.get(name)(cfg, input_shape)


def build_transformer_decoder(cfg, in_channels: int, text_dim: int):
    name = cfg.MODEL.OMG.TRANSFORMER_DECODER_NAME
    return TRANSFORMER_DECODER_REGISTRY.get(name)(cfg, in_channels, text_dim)
