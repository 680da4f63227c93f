"""The random generators' states as a checkpointable, so ``--resume`` continues their streams.

The trainer registers :class:`RNGStates` with its checkpointer: every periodic / final save holds
the states of ``random``, ``numpy`` and torch (CPU, and CUDA when present) of the saving process,
and a resumed run restores them before its first iteration. The model draws from them (point
sampling of the matcher and the losses, prompt jitter); the data mapping does not (each sample is
mapped under its own seed, see ``omgseg.data.build.SeededMapDataset``).
"""
import random
from typing import Any, Dict

import numpy as np
import torch

__all__ = ["RNGStates"]


class RNGStates:
    """``state_dict()`` / ``load_state_dict()`` of the global random generators, stored as
    tensors and plain Python values (readable with ``torch.load(weights_only=True)``)."""

    def state_dict(self) -> Dict[str, Any]:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state = {
            "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                      float(cached)],
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
