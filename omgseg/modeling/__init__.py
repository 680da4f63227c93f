"""Importing this package registers the backbone, the heads and the meta-architecture."""
from .build import PIXEL_DECODER_REGISTRY, TRANSFORMER_DECODER_REGISTRY
from . import backbone  # noqa: F401
from . import pixel_decoder  # noqa: F401
from . import transformer_decoder  # noqa: F401
from .meta_arch import OMGSeg, Vocabulary

__all__ = ["OMGSeg", "Vocabulary", "PIXEL_DECODER_REGISTRY", "TRANSFORMER_DECODER_REGISTRY"]
