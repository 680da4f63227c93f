#!/usr/bin/env python
"""ADE20K SceneParsing annotations -> Detectron2 semantic PNGs (value - 1; 0 "other" -> 255).

    ADEChallengeData2016/annotations/{training,validation}/*.png
 -> ADEChallengeData2016/annotations_detectron2/{training,validation}/*.png

under $DETECTRON2_DATASETS (or --root). Used by ade20k_sem_seg_* (Detectron2) and
ade20k_panoptic_* (sem_seg_file_name). annotations_detectron2/ must be new, empty or written by
this script (.omgseg-manifest.json).
"""
import argparse
import os
import sys

from omgseg.utils.file_io import ManagedOutput

from panoptic_conversions import CONVERSIONS_VERSION, convert_ade20k_sem_seg  # siblings
from prepare_common import DEFAULT_ROOT, add_output_arguments, already_generated, cli_main

SCRIPT = "datasets/prepare_ade20k_sem_seg.py"


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=DEFAULT_ROOT, help="default: $DETECTRON2_DATASETS")
    add_output_arguments(parser)
    args = parser.parse_args(argv)

    base = os.path.join(args.root, "ADEChallengeData2016")
    source = os.path.join(base, "annotations")
    out = ManagedOutput(os.path.join(base, "annotations_detectron2"), script=SCRIPT,
                        version=CONVERSIONS_VERSION,
                        parameters={"annotations": os.path.abspath(source)}, force=args.force)
    if already_generated(out):
        return 0
    with out.writing() as tmp:
        for dirname in ("training", "validation"):
            n = convert_ade20k_sem_seg(os.path.join(source, dirname), os.path.join(tmp, dirname),
                                       progress=not args.no_progress)
            print(f"converted {n} PNGs of {dirname}")
    print(f"wrote {out.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
