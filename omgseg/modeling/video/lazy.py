"""Lazy, re-iterable views of a video's per-frame outputs.

Several evaluators read the same output one after the other (VPQ, then VSS), and a video may be
long: a frame is post-processed when it is accessed, and what is computed lives only as long as
the caller keeps the returned object. Nothing holds a list of full-resolution maps.
"""
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Dict, Iterator

__all__ = ["FrameOutput", "LazyFrames", "LazySequence"]


class FrameOutput(Mapping):
    """One frame's output dict: ``frame[key]`` runs ``producers[key](t)`` on first access and
    keeps the value in this object (``"panoptic_seg"``, ``"sem_seg"``, ...)."""

    def __init__(self, t: int, producers: Dict[str, Callable[[int], Any]]):
        self._t = t
        self._producers = producers
        self._values: Dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._values:
            if key not in self._producers:
                raise KeyError(key)
            self._values[key] = self._producers[key](self._t)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._producers)

    def __len__(self) -> int:
        return len(self._producers)

    def __repr__(self) -> str:
        return f"FrameOutput(frame={self._t}, keys={list(self._producers)})"


class LazySequence(Sequence):
    """``seq[t]`` = ``item(t)`` computed on every access, for ``0 <= t < length`` (negative
    indices count from the end; a slice gives a list of the items)."""

    def __init__(self, length: int, item: Callable[[int], Any], name: str = "video"):
        self._length = int(length)
        self._item = item
        self._name = name

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        t = int(index)
        if t < 0:
            t += self._length
        if not 0 <= t < self._length:
            raise IndexError(f"{self._name}: frame {index} outside a video of {self._length} "
                             "frames")
        return self._item(t)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name}, {self._length} frames)"


class LazyFrames(LazySequence):
    """The ``"frames"`` of a video output: ``frames[t]`` is a :class:`FrameOutput`."""

    def __init__(self, length: int, producers: Dict[str, Callable[[int], Any]],
                 name: str = "video"):
        super().__init__(length, lambda t: FrameOutput(t, producers), name)
        self.keys = tuple(producers)
