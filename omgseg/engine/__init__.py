from .launch import launch
from .preflight import ConfigError
from .trainer import Trainer, setup_cfg

__all__ = ["ConfigError", "Trainer", "launch", "setup_cfg"]
