"""Mask decoders (registered in ``TRANSFORMER_DECODER_REGISTRY`` on import)."""
from .omg_decoder import (
    OMGMaskDecoder,
    identity_self_attn_mask,
    mask_logits_to_attn_mask,
    mask_pool,
    resize_mask_features,
    tube_mask_logits,
    unblock_fully_masked_rows,
)

__all__ = [
    "OMGMaskDecoder",
    "identity_self_attn_mask",
    "mask_logits_to_attn_mask",
    "mask_pool",
    "resize_mask_features",
    "tube_mask_logits",
    "unblock_fully_masked_rows",
]
