#!/usr/bin/env python
"""ADE20K panoptic annotations (Mask2Former layout) from the SceneParsing semantic PNGs and the
ADE20K instance PNGs (annotations_instance/, from the SceneParsing challenge 2017 download):

    ADEChallengeData2016/ade20k_panoptic_{train,val}.json + ade20k_panoptic_{train,val}/*.png
    ADEChallengeData2016/ade20k_panoptic_{train,val}_instances.json  (things, COCO RLE, ADE-150 ids)

under $DETECTRON2_DATASETS (or --root). Stuff segments come from annotations/ (one per stuff
class), thing segments from annotations_instance/ (R = Instance100 class, G = instance index),
mapped to the 150 classes; see datasets/README.md. Files of those names that this script did not
write (e.g. Mask2Former's) are never replaced without --force; what it writes is recorded in
ADEChallengeData2016/.omgseg-manifest.ade20k_panoptic_{split}.json.
"""
import argparse
import os
import sys

from omgseg.utils.file_io import ManagedOutput

from panoptic_conversions import (  # siblings
    CONVERSIONS_VERSION,
    convert_ade20k_panoptic,
    convert_panoptic_to_instances,
)
from prepare_common import DEFAULT_ROOT, add_output_arguments, already_generated, cli_main

SCRIPT = "datasets/prepare_ade20k_pan_seg.py"
SPLIT_DIRS = {"train": "training", "val": "validation"}


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=DEFAULT_ROOT, help="default: $DETECTRON2_DATASETS")
    parser.add_argument("--splits", nargs="+", default=["train", "val"],
                        choices=sorted(SPLIT_DIRS))
    parser.add_argument("--no-instances", action="store_true", help="skip the instances json")
    add_output_arguments(parser)
    args = parser.parse_args(argv)

    base = os.path.join(args.root, "ADEChallengeData2016")
    for split in args.splits:
        d = SPLIT_DIRS[split]
        name = f"ade20k_panoptic_{split}"
        entries = [name, f"{name}.json"] + ([] if args.no_instances else [f"{name}_instances.json"])
        out = ManagedOutput(base, script=SCRIPT, version=CONVERSIONS_VERSION,
                            parameters={"root": os.path.abspath(base), "split": split,
                                        "instances": not args.no_instances},
                            entries=entries, key=name, force=args.force)
        if already_generated(out):
            continue
        with out.writing() as tmp:
            pan_dir, pan_json = os.path.join(tmp, name), os.path.join(tmp, f"{name}.json")
            pan = convert_ade20k_panoptic(
                os.path.join(base, "images", d), os.path.join(base, "annotations", d),
                os.path.join(base, "annotations_instance", d), pan_dir, pan_json,
                progress=not args.no_progress,
            )
            print(f"{split}: {len(pan['annotations'])} panoptic PNGs")
            if not args.no_instances:
                inst = convert_panoptic_to_instances(
                    pan_json, pan_dir, os.path.join(tmp, f"{name}_instances.json"),
                    progress=not args.no_progress)
                print(f"{split}: {len(inst['annotations'])} instances")
        print(f"wrote {out.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
