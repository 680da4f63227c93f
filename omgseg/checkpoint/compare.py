"""How a checkpoint's tensors line up with a model's: matched, other shape, missing, unexpected."""
from dataclasses import dataclass, field
from typing import List, Mapping, Sequence, Tuple

import torch

__all__ = ["StateDictDiff", "compare_state_dicts"]

Shape = Tuple[int, ...]


@dataclass
class StateDictDiff:
    """Names sorted as in the model (then the checkpoint for unexpected ones).

    ``mismatched`` holds ``(name, checkpoint shape, model shape)``.
    """

    matched: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, Shape, Shape]] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """True when every tensor has its counterpart with the same shape."""
        return not (self.mismatched or self.missing or self.unexpected)

    def summary(self, max_names: int = 3) -> str:
        """One line per category, listing at most ``max_names`` names each."""
        lines = [f"{len(self.matched)} tensors match"]
        if self.mismatched:
            shown = [
                f"{k} (checkpoint {list(a)} vs model {list(b)})"
                for k, a, b in self.mismatched[:max_names]
            ]
            lines.append(
                f"{len(self.mismatched)} with another shape: {_listing(shown, self.mismatched)}"
            )
        if self.missing:
            lines.append(
                f"{len(self.missing)} missing from the checkpoint: "
                f"{_listing(self.missing[:max_names], self.missing)}"
            )
        if self.unexpected:
            lines.append(
                f"{len(self.unexpected)} in the checkpoint but not in the model: "
                f"{_listing(self.unexpected[:max_names], self.unexpected)}"
            )
        return "\n".join("  " + line for line in lines)


def _listing(shown: Sequence[str], everything: Sequence) -> str:
    more = len(everything) - len(shown)
    return ", ".join(shown) + (f", ... ({more} more)" if more > 0 else "")


def compare_state_dicts(
    checkpoint: Mapping[str, torch.Tensor], model: Mapping[str, torch.Tensor]
) -> StateDictDiff:
    """Compare a checkpoint's ``{name: tensor}`` with a model's ``state_dict()`` by exact name."""
    diff = StateDictDiff()
    for name, tensor in model.items():
        if name not in checkpoint:
            diff.missing.append(name)
        elif tuple(checkpoint[name].shape) != tuple(tensor.shape):
            diff.mismatched.append((name, tuple(checkpoint[name].shape), tuple(tensor.shape)))
        else:
            diff.matched.append(name)
    diff.unexpected = [name for name in checkpoint if name not in model]
    return diff
