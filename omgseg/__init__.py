"""OMG-Seg as a Detectron2 plugin. ``import omgseg`` registers the config, datasets and model."""
from .config import add_omgseg_config
from . import data  # noqa: F401  (registers datasets)
from . import modeling  # noqa: F401  (registers backbone, heads, meta-architecture)

__all__ = ["add_omgseg_config"]
__version__ = "0.1.0"
