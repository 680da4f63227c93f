#!/usr/bin/env python
"""Generate the OMG-Shapes synthetic benchmark (images + videos) for OMG-Seg.

Usage (from the repository root, or anywhere after ``pip install -e .``)::

    python datasets/prepare_synthetic.py                    # $DETECTRON2_DATASETS/omg_shapes
    python datasets/prepare_synthetic.py --root /tmp/shapes --seed 1 --num-train-images 100

The root must be absent, empty, or a dataset this script generated (its ``.omgseg-manifest.json``
lists every file it wrote); anything else is refused and left untouched. Idempotent: when the
manifest records the same generator version and parameters, nothing is rewritten ("already
generated"). Otherwise (or with ``--force``) the dataset is generated into a temporary sibling
folder and moved into place when complete; files the manifest does not list are never deleted.
"""
import argparse
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from omgseg.synthetic import OmgShapesConfig, default_omg_shapes_root, prepare_omg_shapes

from prepare_common import cli_main  # sibling

_DEFAULTS = OmgShapesConfig()
_COLUMNS = ("images", "segments", "instances", "videos", "frames", "tracks",
            "entering_or_leaving_tracks", "davis_objects")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=None,
                   help="output directory (default: $DETECTRON2_DATASETS/omg_shapes, "
                        "DETECTRON2_DATASETS defaulting to 'datasets')")
    p.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    p.add_argument("--num-train-images", type=int, default=_DEFAULTS.num_train_images)
    p.add_argument("--num-val-images", type=int, default=_DEFAULTS.num_val_images)
    p.add_argument("--num-train-videos", type=int, default=_DEFAULTS.num_train_videos)
    p.add_argument("--num-val-videos", type=int, default=_DEFAULTS.num_val_videos)
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"),
                   default=list(_DEFAULTS.image_size))
    p.add_argument("--video-size", type=int, nargs=2, metavar=("H", "W"),
                   default=list(_DEFAULTS.video_size))
    p.add_argument("--min-frames", type=int, default=_DEFAULTS.min_frames)
    p.add_argument("--max-frames", type=int, default=_DEFAULTS.max_frames)
    p.add_argument("--force", action="store_true",
                   help="regenerate even if up to date; also accept a root this script wrote "
                        "without a manifest (an older version). Only the dataset's own files are "
                        "replaced; nothing else is deleted")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def format_summary(counts: Dict[str, Dict[str, int]]) -> str:
    """A plain-text table: one row per split, one column per count."""
    header = ["split"] + [c.replace("entering_or_leaving_tracks", "enter/leave") for c in _COLUMNS]
    rows = [[split] + [str(counts[split].get(c, 0)) for c in _COLUMNS] for split in counts]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(v.rjust(w) for v, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


@cli_main
def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    root = Path(args.root) if args.root else default_omg_shapes_root()
    params = dict(seed=args.seed, num_train_images=args.num_train_images,
                  num_val_images=args.num_val_images, num_train_videos=args.num_train_videos,
                  num_val_videos=args.num_val_videos, image_size=tuple(args.image_size),
                  video_size=tuple(args.video_size), min_frames=args.min_frames,
                  max_frames=args.max_frames)
    start = time.perf_counter()
    counts, generated = prepare_omg_shapes(root, force=args.force, progress=not args.quiet,
                                           **params)
    elapsed = time.perf_counter() - start
    if generated:
        print(f"OMG-Shapes generated in {os.fspath(root)} ({elapsed:.1f} s)")
    else:
        print(f"OMG-Shapes already generated in {os.fspath(root)} (same parameters; "
              "use --force to regenerate)")
    print(format_summary(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
