"""Seed derivation: every generated item owns an independent ``numpy.random.Generator``.

An item's generator depends only on (seed, split, kind, index), so the content of item ``i`` does
not change when the number of items of a split changes, and the whole dataset is reproducible.
"""
import numpy as np

__all__ = ["item_rng"]

_SPLIT_CODES = {"train": 0, "val": 1}
_KIND_CODES = {"image": 0, "video": 1}


def item_rng(seed: int, split: str, kind: str, index: int) -> np.random.Generator:
    """The random generator of item ``index`` of ``kind`` ("image" | "video") in ``split``."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    entropy = [int(seed), _SPLIT_CODES[split], _KIND_CODES[kind], int(index)]
    return np.random.default_rng(np.random.SeedSequence(entropy))
