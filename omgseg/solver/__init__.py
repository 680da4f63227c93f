"""AdamW / SGD with OMG-Seg parameter groups and full-model gradient clipping."""
from .build import build_lr_scheduler, build_optimizer, get_param_groups

__all__ = ["build_optimizer", "build_lr_scheduler", "get_param_groups"]
