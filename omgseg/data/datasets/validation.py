"""Checks of annotation files that Detectron2 / pycocotools skip: malformed JSON names its file,
and ids that must be unique are (two images sharing an id would silently pool their
annotations on one of them in pycocotools' index)."""
import functools
import json
import os
from collections import Counter
from typing import Any, Iterable, List

__all__ = ["load_json", "check_unique_ids", "check_coco_instances_json"]

# At most this many offending ids are listed in an error message.
_MAX_LISTED = 10


def load_json(path: str) -> Any:
    """``json.load`` of ``path``; malformed JSON is a ValueError naming the file and position."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"Malformed JSON in {path}: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from e
    except UnicodeDecodeError as e:
        raise ValueError(f"Malformed JSON in {path}: not UTF-8 text ({e})") from e


def _duplicates(values: Iterable) -> List:
    return [v for v, n in Counter(values).items() if n > 1]


def check_unique_ids(values: Iterable, source: str, what: str) -> None:
    """Raise a ValueError naming ``source`` if some of ``values`` (``what``, e.g. "image id")
    occur more than once."""
    dup = _duplicates(values)
    if dup:
        listed = ", ".join(repr(v) for v in dup[:_MAX_LISTED])
        more = f" and {len(dup) - _MAX_LISTED} more" if len(dup) > _MAX_LISTED else ""
        raise ValueError(f"{source}: duplicate {what} ({listed}{more}): each must be unique")


@functools.lru_cache(maxsize=32)
def _check_coco_instances_json(path: str, mtime_ns: int, size: int) -> None:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path}: not a COCO json (no 'images' list)")
    check_unique_ids((img.get("id") for img in data["images"]), path, "image id")
    image_ids = {img.get("id") for img in data["images"]}
    annotations = data.get("annotations") or []
    check_unique_ids((a["id"] for a in annotations if "id" in a), path, "annotation id")
    orphans = sorted({a.get("image_id") for a in annotations} - image_ids, key=repr)
    if orphans:
        raise ValueError(
            f"{path}: annotations refer to image ids that are not in 'images': "
            f"{orphans[:_MAX_LISTED]}"
        )


def check_coco_instances_json(json_file: str) -> None:
    """Validate a COCO instances json before Detectron2's ``load_coco_json`` reads it: readable
    JSON, unique image and annotation ids, no annotation of an unknown image. The result is cached
    per (path, modification time, size)."""
    stat = os.stat(json_file)
    _check_coco_instances_json(os.path.abspath(json_file), stat.st_mtime_ns, stat.st_size)
