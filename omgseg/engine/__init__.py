from .preflight import ConfigError
from .trainer import Trainer, setup_cfg

__all__ = ["ConfigError", "Trainer", "setup_cfg"]
