#!/usr/bin/env python
"""Derive the semantic PNGs and the things-only instances json of the real COCO sample
(../shared/data/coco-panoptic-sample, read-only; override with $OMGSEG_COCO_SAMPLE or
--sample-dir) into $DETECTRON2_DATASETS/coco_panoptic_sample/{panoptic_semseg/,instances.json}.

Loading the registered dataset `coco_panoptic_sample` does this by itself on first use; this
script does it ahead of time (--force rebuilds).
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_ROOT = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=DEFAULT_ROOT, help="default: $DETECTRON2_DATASETS")
    parser.add_argument("--sample-dir", default=None)
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)

    from omgseg.data.datasets.coco_panoptic import coco_sample_dir, prepare_coco_panoptic_sample

    out_root = os.path.join(args.root, "coco_panoptic_sample")
    if args.force:
        shutil.rmtree(os.path.join(out_root, "panoptic_semseg"), ignore_errors=True)
        if os.path.isfile(os.path.join(out_root, "instances.json")):
            os.remove(os.path.join(out_root, "instances.json"))
    made = prepare_coco_panoptic_sample(args.sample_dir or coco_sample_dir(), out_root)
    for what, created in made.items():
        print(f"{what}: {'created' if created else 'already present'} in {out_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
