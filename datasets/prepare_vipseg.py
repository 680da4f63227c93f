#!/usr/bin/env python
"""VIPSeg raw download -> VIPSeg_720P (the release the VPS literature evaluates on):

    VIPSeg/{imgs,panomasks}/<video>/...     (raw)  + VIPSeg/{train,val}.txt
 -> VIPSeg/VIPSeg_720P/{images,panomasks}/  (height 720)
 -> VIPSeg/VIPSeg_720P/panomasksRGB/<video>/<frame>.png + panoptic_gt_VIPSeg_{train,val}.json

under $DETECTRON2_DATASETS (or --root). --skip-resize when VIPSeg_720P/{images,panomasks}
already exist (e.g. the pre-resized download). See datasets/README.md. Files of those names that
this script did not write are never replaced without --force; what it writes is recorded in
VIPSeg_720P/.omgseg-manifest.{vipseg_720p,vipseg_panoptic_<split>}.json.
"""
import argparse
import os
import sys

from omgseg.utils.file_io import ManagedOutput

from panoptic_conversions import CONVERSIONS_VERSION  # siblings
from prepare_common import DEFAULT_ROOT, add_output_arguments, already_generated, cli_main
from video_conversions import convert_vipseg_panoptic, read_video_list, resize_vipseg_to_720p

SCRIPT = "datasets/prepare_vipseg.py"
HEIGHT = 720


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=DEFAULT_ROOT, help="default: $DETECTRON2_DATASETS")
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    parser.add_argument("--skip-resize", action="store_true")
    add_output_arguments(parser)
    args = parser.parse_args(argv)

    vipseg = os.path.join(args.root, "VIPSeg")
    out_root = os.path.join(vipseg, "VIPSeg_720P")
    if not args.skip_resize:
        out = ManagedOutput(out_root, script=SCRIPT, version=CONVERSIONS_VERSION,
                            parameters={"raw": os.path.abspath(vipseg), "height": HEIGHT},
                            entries=["images", "panomasks"], key="vipseg_720p", force=args.force)
        if not already_generated(out):
            with out.writing() as tmp:
                n = resize_vipseg_to_720p(vipseg, str(tmp), HEIGHT, progress=not args.no_progress)
            print(f"resized {n} frames into {out_root}")
    for split in args.splits:
        videos = read_video_list(os.path.join(vipseg, f"{split}.txt"))
        name = f"panoptic_gt_VIPSeg_{split}.json"
        out = ManagedOutput(out_root, script=SCRIPT, version=CONVERSIONS_VERSION,
                            parameters={"root": os.path.abspath(out_root), "videos": videos},
                            entries=[name] + [f"panomasksRGB/{v}" for v in videos],
                            key=f"vipseg_panoptic_{split}", force=args.force)
        if already_generated(out):
            continue
        with out.writing() as tmp:
            convert_vipseg_panoptic(out_root, split, videos, out_root=str(tmp),
                                    progress=not args.no_progress)
        print(f"{split}: wrote {len(videos)} videos' panoptic PNGs and {name} in {out_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
