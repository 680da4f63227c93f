#!/usr/bin/env python
"""COCO panoptic json + PNGs -> COCO instances json (things only, RLE masks, crowd kept with
iscrowd = 1; category ids of the panoptic json).

    python datasets/prepare_coco_instances_from_panoptic.py \
        --panoptic-json J --panoptic-root P --out instances.json

(The real COCO 2017 release ships instances_{train,val}2017.json: this is for datasets that do
not, e.g. the COCO sample or ADE20K panoptic; see datasets/README.md.) An existing --out file
is replaced only if this script wrote it (recorded in .omgseg-manifest.<name>.json beside it).
"""
import argparse
import os
import sys

from omgseg.utils.file_io import ManagedOutput

from panoptic_conversions import CONVERSIONS_VERSION, convert_panoptic_to_instances  # siblings
from prepare_common import add_output_arguments, already_generated, cli_main

SCRIPT = "datasets/prepare_coco_instances_from_panoptic.py"


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panoptic-json", required=True)
    parser.add_argument("--panoptic-root", required=True)
    parser.add_argument("--out", required=True, help="the instances json to write")
    add_output_arguments(parser)
    args = parser.parse_args(argv)

    folder, name = os.path.split(os.path.abspath(args.out))
    params = {"panoptic_json": os.path.abspath(args.panoptic_json),
              "panoptic_root": os.path.abspath(args.panoptic_root)}
    out = ManagedOutput(folder, script=SCRIPT, version=CONVERSIONS_VERSION, parameters=params,
                        entries=[name], key=os.path.splitext(name)[0], force=args.force)
    if already_generated(out):
        return 0
    with out.writing() as tmp:
        data = convert_panoptic_to_instances(args.panoptic_json, args.panoptic_root,
                                             os.path.join(tmp, name),
                                             progress=not args.no_progress)
    print(f"wrote {len(data['annotations'])} instances of {len(data['images'])} images to "
          f"{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
