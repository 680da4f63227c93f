#!/usr/bin/env python
"""COCO panoptic json + PNGs -> COCO instances json (things only, RLE masks, crowd kept with
iscrowd = 1; category ids of the panoptic json).

    python datasets/prepare_coco_instances_from_panoptic.py \
        --panoptic-json J --panoptic-root P --out instances.json

(The real COCO 2017 release ships instances_{train,val}2017.json: this is for datasets that do
not, e.g. the COCO sample or ADE20K panoptic; see datasets/README.md.)
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panoptic-json", required=True)
    parser.add_argument("--panoptic-root", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from omgseg.data.datasets.panoptic_conversions import convert_panoptic_to_instances

    out = convert_panoptic_to_instances(args.panoptic_json, args.panoptic_root, args.out,
                                        progress=not args.no_progress)
    print(f"wrote {len(out['annotations'])} instances of {len(out['images'])} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
