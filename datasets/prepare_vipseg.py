#!/usr/bin/env python
"""VIPSeg raw download -> VIPSeg_720P (the release the VPS literature evaluates on):

    VIPSeg/{imgs,panomasks}/<video>/...     (raw)  + VIPSeg/{train,val}.txt
 -> VIPSeg/VIPSeg_720P/{images,panomasks}/  (height 720)
 -> VIPSeg/VIPSeg_720P/panomasksRGB/<video>/<frame>.png + panoptic_gt_VIPSeg_{train,val}.json

under $DETECTRON2_DATASETS (or --root). --skip-resize when VIPSeg_720P/{images,panomasks}
already exist (e.g. the pre-resized download). See datasets/README.md.
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
    parser.add_argument("--skip-resize", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from omgseg.data.datasets.video_conversions import (
        convert_vipseg_panoptic,
        resize_vipseg_to_720p,
    )

    vipseg = os.path.join(args.root, "VIPSeg")
    out_root = os.path.join(vipseg, "VIPSeg_720P")
    if not args.skip_resize:
        n = resize_vipseg_to_720p(vipseg, out_root, progress=not args.no_progress)
        print(f"resized {n} frames into {out_root}")
    lists = {s: os.path.join(vipseg, f"{s}.txt") for s in args.splits}
    out = convert_vipseg_panoptic(out_root, lists, progress=not args.no_progress)
    for split, path in out.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
