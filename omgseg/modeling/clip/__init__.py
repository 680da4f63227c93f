"""OpenCLIP factory (with tiny configs), text encoding, ViLD templates, text-embedding cache."""
from .factory import TINY_CLIP_CONFIGS, build_clip_model, clip_model_key, load_clip_weights
from .text_embeddings import (
    VILD_TEMPLATES,
    TextEmbeddingCache,
    compute_text_embeddings,
    split_synonyms,
)
from .text_encoder import can_trim_context, encode_text

__all__ = [
    "TINY_CLIP_CONFIGS",
    "build_clip_model",
    "clip_model_key",
    "load_clip_weights",
    "VILD_TEMPLATES",
    "TextEmbeddingCache",
    "compute_text_embeddings",
    "split_synonyms",
    "can_trim_context",
    "encode_text",
]
