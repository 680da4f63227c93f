"""Shared helpers for dataset registration: the datasets root, clear missing-file errors,
registration that never overwrites an existing name, metadata builders, atomic writes."""
import functools
import json
import logging
import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog

from ...utils.file_io import atomic_output, default_mode  # noqa: F401  (default_mode re-exported)

logger = logging.getLogger(__name__)

__all__ = [
    "get_datasets_root",
    "README_HINT",
    "require_file",
    "require_dir",
    "register_dataset",
    "panoptic_metadata",
    "instance_metadata",
    "convert_segment_category",
    "atomic_write_json",
    "atomic_save_png",
    "image_id_from",
]

README_HINT = "datasets/README.md"


def get_datasets_root() -> str:
    """``$DETECTRON2_DATASETS`` (default ``datasets``), user-expanded, as Detectron2 does."""
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def _missing(path: str, what: str, prepare: Optional[str]) -> FileNotFoundError:
    msg = f"{what} not found: {path!r}. See {README_HINT} for the expected layout"
    if prepare:
        msg += f"; it is produced by {prepare}"
    msg += " (the root is $DETECTRON2_DATASETS)."
    return FileNotFoundError(msg)


def require_file(path: str, what: str = "File", prepare: Optional[str] = None) -> str:
    """Return ``path`` if it is a file, else raise a FileNotFoundError naming it and the fix."""
    if not os.path.isfile(path):
        raise _missing(path, what, prepare)
    return path


def require_dir(path: str, what: str = "Directory", prepare: Optional[str] = None) -> str:
    if not os.path.isdir(path):
        raise _missing(path, what, prepare)
    return path


def register_dataset(name: str, loader: Callable[[], List[dict]], metadata: Dict) -> bool:
    """Register ``loader`` and ``metadata`` under ``name`` unless the name already exists.

    Every record the registered loader returns carries ``dataset_name`` = ``name``, so that
    Detectron2's own ``get_detection_dataset_dicts`` / loader builders can be used directly.
    Returns True if registered, False if the name was taken (nothing is changed then).
    """
    if name in DatasetCatalog.list():
        logger.debug("Dataset %s is already registered; leaving it as it is.", name)
        return False
    DatasetCatalog.register(name, functools.partial(_load_stamped, loader, name))
    MetadataCatalog.get(name).set(**metadata)
    return True


def _load_stamped(loader: Callable[[], List[dict]], name: str) -> List[dict]:
    """``loader()`` with ``dataset_name`` set on every record (it selects the vocabulary)."""
    records = loader()
    for record in records:
        record["dataset_name"] = name
    return records


def panoptic_metadata(categories: Sequence[Dict]) -> Dict:
    """Mask2Former-style metadata for a panoptic / semantic dataset.

    ``categories``: dicts with ``id``, ``name``, ``isthing``, ``color`` in contiguous order (the
    contiguous id of a class is its index). ``stuff_*`` cover all classes, ``thing_*`` things only;
    both id maps send dataset ids to the same contiguous ids.
    """
    ids = [c["id"] for c in categories]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate category ids in {ids}")
    return {
        "thing_classes": [c["name"] for c in categories if c["isthing"]],
        "thing_colors": [list(c["color"]) for c in categories if c["isthing"]],
        "stuff_classes": [c["name"] for c in categories],
        "stuff_colors": [list(c["color"]) for c in categories],
        "thing_dataset_id_to_contiguous_id": {
            c["id"]: i for i, c in enumerate(categories) if c["isthing"]
        },
        "stuff_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(categories)},
    }


def instance_metadata(categories: Sequence[Dict]) -> Dict:
    """Metadata for an instance-only dataset (COCO instances, YouTube-VIS): things only."""
    things = [c for c in categories if c.get("isthing", 1)]
    return {
        "thing_classes": [c["name"] for c in things],
        "thing_colors": [list(c["color"]) for c in things],
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(things)},
    }


def convert_segment_category(segment: Dict, meta: Dict, source: str) -> Dict:
    """A copy of a panoptic ``segments_info`` entry with a contiguous ``category_id`` and
    ``isthing``; an id absent from the metadata is an error naming ``source`` and the id."""
    cat = segment["category_id"]
    out = dict(segment)
    if cat in meta["thing_dataset_id_to_contiguous_id"]:
        out["category_id"] = meta["thing_dataset_id_to_contiguous_id"][cat]
        out["isthing"] = True
    elif cat in meta["stuff_dataset_id_to_contiguous_id"]:
        out["category_id"] = meta["stuff_dataset_id_to_contiguous_id"][cat]
        out["isthing"] = False
    else:
        raise ValueError(
            f"{source}: unknown category id {cat!r} (segment id {segment.get('id')}); "
            f"it is not one of the {len(meta['stuff_dataset_id_to_contiguous_id'])} categories "
            "registered for this dataset."
        )
    out.setdefault("iscrowd", 0)
    return out


def image_id_from(value):
    """COCO image ids are ints; ADE20K / VIPSeg ids are strings. Keep strings that are not ints."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def atomic_write_json(obj, path: str) -> None:
    """Write JSON to a temporary file in the target directory, then rename it into place."""
    with atomic_output(path, suffix=".json") as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f)


def atomic_save_png(array: np.ndarray, path: str) -> None:
    """Save a uint8 array (H, W) or (H, W, 3) as PNG atomically (temporary file + rename)."""
    from PIL import Image

    with atomic_output(path, suffix=".png") as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
