"""Config checks run before anything is built or written: each error names the key to fix."""
import difflib
import os
from typing import Iterable

import torch

from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog

__all__ = ["ConfigError", "check_output_dir", "check_device", "check_datasets", "check_config"]


class ConfigError(ValueError):
    """A config value that cannot work on this machine or with these registrations."""


def check_output_dir(output_dir: str) -> None:
    """OUTPUT_DIR must be a folder or creatable as one (not an existing file, not under one)."""
    if not output_dir:
        return
    path = os.path.abspath(os.path.expanduser(output_dir))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(
            f"OUTPUT_DIR {output_dir} is an existing file, not a folder; choose another OUTPUT_DIR "
            "(nothing was written)"
        )
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"OUTPUT_DIR {output_dir} cannot be created: {parent} is a file")


def check_device(device: str) -> None:
    """MODEL.DEVICE must name a device type PyTorch knows, and CUDA must exist if asked for."""
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ConfigError(
            f"MODEL.DEVICE {device!r} is not a PyTorch device (e.g. cpu, cuda)"
        ) from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"MODEL.DEVICE is {device!r} but this machine has no usable CUDA device "
            "(torch.cuda.is_available() is False); run with MODEL.DEVICE cpu"
        )


def _check_names(key: str, names: Iterable[str], registered: list) -> None:
    for name in names:
        if name in registered:
            continue
        close = difflib.get_close_matches(name, registered, n=5, cutoff=0.6)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else f"none of the {len(registered)} registered names is close (DatasetCatalog.list())"
        )
        raise ConfigError(f"{key}: {name!r} is not a registered dataset; {hint}")


def check_datasets(cfg: CfgNode, *, train: bool = True) -> None:
    """Every name in DATASETS.TEST (and DATASETS.TRAIN when ``train``) must be registered."""
    registered = DatasetCatalog.list()
    if train:
        _check_names("DATASETS.TRAIN", cfg.DATASETS.TRAIN, registered)
    _check_names("DATASETS.TEST", cfg.DATASETS.TEST, registered)


def check_config(cfg: CfgNode, *, train: bool = True) -> None:
    """All of the above; ``train=False`` for evaluation-only runs (DATASETS.TRAIN unused)."""
    check_output_dir(cfg.OUTPUT_DIR)
    check_device(cfg.MODEL.DEVICE)
    check_datasets(cfg, train=train)
