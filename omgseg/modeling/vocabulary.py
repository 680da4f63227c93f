"""Label spaces of the classifier: one dataset's vocabulary, and the joint training vocabulary.

A :class:`Vocabulary` is what the CLIP-text classifier scores against: K class strings (each may
hold comma-separated synonyms) in contiguous-id order, and which of them are things. Training
classifies every sample against the JOINT vocabulary of all training datasets
(:func:`merge_vocabularies`, the rule of the official ``ConcatOVDataset``); evaluation uses the
test dataset's own vocabulary.
"""
import os
from typing import Any, List, Optional, Sequence, Tuple

import torch

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..data.datasets.ov_vocabularies import split_synonyms

__all__ = [
    "Vocabulary",
    "class_names_from_metadata",
    "dataset_vocabulary",
    "merge_vocabularies",
    "split_synonyms",
    "training_vocabulary",
]


def _meta_get(metadata: Any, key: str):
    if isinstance(metadata, dict):
        return metadata.get(key)
    getter = getattr(metadata, "get", None)
    return getter(key, None) if callable(getter) else getattr(metadata, key, None)


def class_names_from_metadata(metadata: Any) -> List[str]:
    """Class strings of a dataset in contiguous-id order.

    ``ov_vocabulary`` (the official synonym lists) if present, else ``stuff_classes`` when
    non-empty (by this project's convention they list all classes), else ``thing_classes``.
    """
    for key in ("ov_vocabulary", "stuff_classes", "thing_classes"):
        names = _meta_get(metadata, key)
        if names:
            return [str(n) for n in names]
    raise ValueError(
        f"Metadata {_meta_get(metadata, 'name') or ''!r} has no ov_vocabulary, stuff_classes or "
        "thing_classes"
    )


class Vocabulary:
    """Class strings of one label space plus which of them are things.

    ``names[i]`` is contiguous class id ``i``; a name may hold comma-separated synonyms.
    """

    def __init__(self, names: Sequence[str], is_thing: Optional[Sequence[bool]] = None):
        if len(names) == 0:
            raise ValueError("A vocabulary needs at least one class name")
        self.names = tuple(str(n) for n in names)
        flags = is_thing if is_thing is not None else [True] * len(self.names)
        self.is_thing = tuple(bool(x) for x in flags)
        if len(self.is_thing) != len(self.names):
            raise ValueError(
                f"is_thing has {len(self.is_thing)} entries for {len(self.names)} class names"
            )

    @classmethod
    def parse(cls, text: str, is_thing: Optional[Sequence[bool]] = None,
              source: str = "vocabulary") -> "Vocabulary":
        """A vocabulary from a text.

        Without ``;`` or line breaks the text is a comma-separated list of classes, one name
        each (``"cat,dog,grass"``). With them, classes are separated by ``;`` or lines and the
        commas inside a class separate its synonyms (``"person, child; car"``: 2 classes).
        Blank lines, lines starting with ``#`` and blank entries at the ends are ignored.

        Raises:
            ValueError naming ``source`` for a text without classes or with an empty class
            (e.g. ``"cat,,dog"``).
        """
        if not isinstance(text, str):
            raise TypeError(f"{source} must be a string, got {type(text).__name__}")
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if len(lines) > 1 or any(";" in ln for ln in lines):
            entries = [e for ln in lines for e in ln.split(";")]
            what = "class (line or ';' entry)"
        else:
            entries = lines[0].split(",") if lines else []
            what = "class name (comma-separated entry)"
        entries = [e.strip() for e in entries]
        while entries and not entries[-1]:  # a trailing separator / blank lines
            entries.pop()
        while entries and not entries[0]:
            entries.pop(0)
        if not entries:
            raise ValueError(f"{source} holds no class names: {text!r}")
        empty = [i for i, e in enumerate(entries) if not e.strip(" ,")]
        if empty:
            raise ValueError(f"{source} has an empty {what} at position(s) {empty}: {text!r}")
        return cls(entries, is_thing)

    @classmethod
    def from_file(cls, path: str, is_thing: Optional[Sequence[bool]] = None) -> "Vocabulary":
        """A vocabulary from a text file: one class per line, its synonyms comma-separated
        (``person, child``); blank lines and ``#`` comments are skipped (:meth:`parse`)."""
        path = os.path.expanduser(str(path))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Vocabulary file {path!r} does not exist")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        lines = [ln.strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        if not lines:
            raise ValueError(f"Vocabulary file {path!r} holds no class names")
        return cls.parse("\n".join(lines), is_thing, source=f"vocabulary file {path!r}")

    @classmethod
    def coerce(cls, vocabulary: Any, is_thing: Optional[Sequence[bool]] = None,
               source: str = "vocabulary") -> "Vocabulary":
        """A :class:`Vocabulary` from what a user passes: a Vocabulary (returned as is; then
        ``is_thing`` must be None), a list / tuple of class strings (synonyms comma-separated
        inside one string), a text (:meth:`parse`: ``"cat,dog,grass"``) or the path of an
        existing file or of a ``.txt`` file (:meth:`from_file`)."""
        if isinstance(vocabulary, Vocabulary):
            if is_thing is not None:
                raise ValueError("is_thing is given with a Vocabulary, which has its own")
            return vocabulary
        if isinstance(vocabulary, os.PathLike):
            return cls.from_file(os.fspath(vocabulary), is_thing)
        if isinstance(vocabulary, str):
            candidate = os.path.expanduser(vocabulary.strip())
            if candidate and (candidate.endswith(".txt") or os.path.isfile(candidate)):
                return cls.from_file(candidate, is_thing)
            return cls.parse(vocabulary, is_thing, source=source)
        if isinstance(vocabulary, (list, tuple)):
            if not all(isinstance(n, str) for n in vocabulary):
                raise TypeError(f"{source} must be a list of class-name strings (synonyms of one "
                                f"class comma-separated inside one string), got {vocabulary!r}")
            if not vocabulary:
                raise ValueError(f"{source} is an empty list: give at least one class name")
            empty = [i for i, n in enumerate(vocabulary) if not n.strip(" ,")]
            if empty:
                raise ValueError(f"{source} has empty names at positions {empty}")
            return cls(list(vocabulary), is_thing)
        raise TypeError(f"{source} must be a Vocabulary, a list of class names, a "
                        f"comma-separated string or a file path, got {type(vocabulary).__name__}")

    @classmethod
    def from_metadata(cls, metadata) -> "Vocabulary":
        """Names from :func:`class_names_from_metadata`; things are the contiguous ids of
        ``thing_dataset_id_to_contiguous_id`` for panoptic / semantic metadata."""
        names = class_names_from_metadata(metadata)
        stuff = _meta_get(metadata, "stuff_classes")
        thing_ids = set((_meta_get(metadata, "thing_dataset_id_to_contiguous_id") or {}).values())
        if stuff and thing_ids:
            is_thing = [i in thing_ids for i in range(len(names))]
        elif stuff and not _meta_get(metadata, "thing_classes"):
            is_thing = [False] * len(names)
        else:
            is_thing = [True] * len(names)
        return cls(names, is_thing)

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self.names == other.names
            and self.is_thing == other.is_thing
        )

    def __hash__(self) -> int:
        return hash((self.names, self.is_thing))

    def __repr__(self) -> str:
        things = sum(self.is_thing)
        head = list(self.names[:3])
        return f"Vocabulary({things} things + {len(self) - things} stuff: {head}...)"


def dataset_vocabulary(name: str) -> Vocabulary:
    """The vocabulary of a registered dataset, from its metadata.

    A dataset registered the Detectron2 way without class names (``register_coco_instances(name,
    {}, json, images)``) gets ``thing_classes`` when it is loaded, as Detectron2 does: it is
    loaded here then.
    """
    if name not in DatasetCatalog.list():
        raise KeyError(
            f"Unknown dataset '{name}': register it (DatasetCatalog / MetadataCatalog) so its "
            "class names can be read from its metadata"
        )
    metadata = MetadataCatalog.get(name)
    if not any(metadata.get(k, None) for k in ("ov_vocabulary", "stuff_classes", "thing_classes")):
        DatasetCatalog.get(name)  # e.g. load_coco_json fills thing_classes from the categories
    try:
        return Vocabulary.from_metadata(metadata)
    except ValueError as e:
        raise ValueError(
            f"Dataset '{name}' names no classes (metadata ov_vocabulary / stuff_classes / "
            "thing_classes, none filled by loading it either); set them at registration or mark "
            "it class_agnostic=True"
        ) from e


def training_vocabulary(name: str) -> Optional[Vocabulary]:
    """What a training dataset adds to the joint vocabulary: None for a class-agnostic one
    (metadata ``class_agnostic``, e.g. COCO-SAM: its targets get no class), else its
    :func:`dataset_vocabulary`."""
    if name in DatasetCatalog.list() and MetadataCatalog.get(name).get("class_agnostic", False):
        return None
    return dataset_vocabulary(name)


def merge_vocabularies(
    vocabularies: Sequence[Optional[Vocabulary]],
) -> Tuple[Vocabulary, List[Optional[torch.Tensor]]]:
    """Merge label spaces as the official ``ConcatOVDataset`` does.

    Things are merged with things and stuff with stuff, in input order: a class joins the first
    joint class of its kind whose synonyms (as first seen) intersect its own, else it is appended.
    The joint vocabulary is things then stuff, each class written as its normalised synonyms
    joined by commas. A None input (class-agnostic dataset) has no classes.

    Returns:
        ``(joint, id_maps)``: ``id_maps[d]`` is an int64 tensor ``[K_d]`` sending the contiguous
        ids of input ``d`` to joint ids, None for a None input.
    """
    joint = {True: [], False: []}  # kind -> list of synonym lists
    local = []  # per input: per class (kind, index within kind)
    for vocab in vocabularies:
        if vocab is None:
            local.append(None)
            continue
        ids = []
        for name, kind in zip(vocab.names, vocab.is_thing):
            syns = split_synonyms(name)
            pool = joint[kind]
            hit = next((j for j, other in enumerate(pool) if set(syns) & set(other)), None)
            if hit is None:
                pool.append(syns)
                hit = len(pool) - 1
            ids.append((kind, hit))
        local.append(ids)
    if not joint[True] and not joint[False]:
        raise ValueError("Cannot merge vocabularies: every dataset is class-agnostic")
    num_things = len(joint[True])
    names = [",".join(s) for s in joint[True] + joint[False]]
    merged = Vocabulary(names, [True] * num_things + [False] * len(joint[False]))
    maps = [
        None if ids is None else torch.tensor(
            [j if kind else num_things + j for kind, j in ids], dtype=torch.long
        )
        for ids in local
    ]
    return merged, maps
