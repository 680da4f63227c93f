"""OpenCLIP model factory (with tiny configs), ViLD prompt templates and the text-embedding bank."""
from .factory import TINY_CLIP_CONFIGS, build_clip_model, clip_model_key, load_clip_state_dict
from .text_embeddings import (
    VILD_TEMPLATES,
    class_names_from_metadata,
    get_text_embeddings,
    split_synonyms,
)

__all__ = [
    "TINY_CLIP_CONFIGS",
    "build_clip_model",
    "clip_model_key",
    "load_clip_state_dict",
    "VILD_TEMPLATES",
    "class_names_from_metadata",
    "get_text_embeddings",
    "split_synonyms",
]
