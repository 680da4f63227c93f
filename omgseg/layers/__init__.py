from .direct_call import call_layer
from .ms_deform_attn import (
    MSDeformAttn,
    ms_deform_attn_core_pytorch,
    multi_scale_deformable_attention,
)
from .position_encoding import (
    PositionEmbeddingSine,
    PositionEmbeddingSine3D,
    coordinate_to_encoding,
)

__all__ = [
    "call_layer",
    "MSDeformAttn",
    "ms_deform_attn_core_pytorch",
    "multi_scale_deformable_attention",
    "PositionEmbeddingSine",
    "PositionEmbeddingSine3D",
    "coordinate_to_encoding",
]
