#!/usr/bin/env python
"""ADE20K SceneParsing annotations -> Detectron2 semantic PNGs (value - 1; 0 "other" -> 255).

    ADEChallengeData2016/annotations/{training,validation}/*.png
 -> ADEChallengeData2016/annotations_detectron2/{training,validation}/*.png

under $DETECTRON2_DATASETS (or --root). Used by ade20k_sem_seg_* (Detectron2) and
ade20k_panoptic_* (sem_seg_file_name).
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
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from omgseg.data.datasets.panoptic_conversions import convert_ade20k_sem_seg

    base = os.path.join(args.root, "ADEChallengeData2016")
    for dirname in ("training", "validation"):
        out_dir = os.path.join(base, "annotations_detectron2", dirname)
        n = convert_ade20k_sem_seg(os.path.join(base, "annotations", dirname), out_dir,
                                   progress=not args.no_progress)
        print(f"wrote {n} PNGs to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
