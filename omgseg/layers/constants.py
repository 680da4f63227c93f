"""Small constant tensors built once per setting (sine wavelengths, index and scale tables)."""
import functools
from typing import Callable, TypeVar

import torch

__all__ = ["cached_constant"]

F = TypeVar("F", bound=Callable)


def cached_constant(fn: F) -> F:
    """Memoise ``fn`` (hashable arguments, e.g. sizes, dtype, device -> tensors) and build its
    tensors outside ``inference_mode``: a constant first asked for by a predictor must still
    serve autograd in a later training step. The tensors are shared: never write to them."""

    @functools.lru_cache(maxsize=64)
    @functools.wraps(fn)
    def build(*args):
        with torch.inference_mode(False):
            return fn(*args)

    return build  # type: ignore[return-value]
