"""OMG-Seg as a Detectron2 plugin. ``import omgseg`` registers the config, datasets and model."""
import warnings as _warnings

with _warnings.catch_warnings():
    # fvcore.nn and detectron2.modeling call torch.jit.script at import time, which torch now
    # deprecates; nothing for a user to act on, so exactly that warning is silenced here.
    _warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    from .config import add_omgseg_config
    from . import data  # noqa: F401  (registers datasets)
    from . import modeling  # noqa: F401  (registers backbone, heads, meta-architecture)

__all__ = ["add_omgseg_config"]
__version__ = "0.1.0"
