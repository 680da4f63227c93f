#!/usr/bin/env python
"""ADE20K panoptic annotations (Mask2Former layout) from the SceneParsing semantic PNGs and the
ADE20K instance PNGs (annotations_instance/, from the SceneParsing challenge 2017 download):

    ADEChallengeData2016/ade20k_panoptic_{train,val}.json + ade20k_panoptic_{train,val}/*.png
    ADEChallengeData2016/ade20k_panoptic_{train,val}_instances.json  (things, COCO RLE, ADE-150 ids)

under $DETECTRON2_DATASETS (or --root). Stuff segments come from annotations/ (one per stuff
class), thing segments from annotations_instance/ (R = Instance100 class, G = instance index),
mapped to the 150 classes; see datasets/README.md.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_ROOT = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=DEFAULT_ROOT, help="default: $DETECTRON2_DATASETS")
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    parser.add_argument("--no-instances", action="store_true", help="skip the instances json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from omgseg.data.datasets.panoptic_conversions import (
        convert_ade20k_panoptic,
        convert_panoptic_to_instances,
    )

    base = os.path.join(args.root, "ADEChallengeData2016")
    dirs = {"train": "training", "val": "validation"}
    for split in args.splits:
        d = dirs[split]
        pan_dir = os.path.join(base, f"ade20k_panoptic_{split}")
        pan_json = os.path.join(base, f"ade20k_panoptic_{split}.json")
        out = convert_ade20k_panoptic(
            os.path.join(base, "images", d), os.path.join(base, "annotations", d),
            os.path.join(base, "annotations_instance", d), pan_dir, pan_json,
            progress=not args.no_progress,
        )
        print(f"wrote {len(out['annotations'])} panoptic PNGs to {pan_dir} and {pan_json}")
        if not args.no_instances:
            inst_json = os.path.join(base, f"ade20k_panoptic_{split}_instances.json")
            inst = convert_panoptic_to_instances(pan_json, pan_dir, inst_json,
                                                 progress=not args.no_progress)
            print(f"wrote {len(inst['annotations'])} instances to {inst_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
