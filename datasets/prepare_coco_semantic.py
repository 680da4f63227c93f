#!/usr/bin/env python
"""COCO panoptic -> semantic PNGs (contiguous ids 0..132 in COCO category order, 255 unlabelled).

    python datasets/prepare_coco_semantic.py    # -> coco/panoptic_semseg_{train,val}2017
    python datasets/prepare_coco_semantic.py --splits val --workers 8
    python datasets/prepare_coco_semantic.py --panoptic-json J --panoptic-root P --out-dir O

Reads $DETECTRON2_DATASETS/coco/annotations/panoptic_{split}2017.json and
coco/panoptic_{split}2017/; writes coco/panoptic_semseg_{split}2017/ (see datasets/README.md).
With --panoptic-json the ids follow that json's category order unless --coco-ids is given.
Each output folder must be new, empty or written by this script (.omgseg-manifest.json).
"""
import argparse
import os
import sys

from omgseg.data.datasets.coco_panoptic import get_coco_panoptic_metadata
from omgseg.utils.file_io import ManagedOutput

from panoptic_conversions import CONVERSIONS_VERSION, convert_panoptic_to_semantic  # siblings
from prepare_common import DEFAULT_ROOT, add_output_arguments, already_generated, cli_main

SCRIPT = "datasets/prepare_coco_semantic.py"


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=DEFAULT_ROOT, help="default: $DETECTRON2_DATASETS")
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    parser.add_argument("--panoptic-json", help="convert this json instead of COCO 2017")
    parser.add_argument("--panoptic-root", help="PNG directory of --panoptic-json")
    parser.add_argument("--out-dir", help="output directory for --panoptic-json")
    parser.add_argument("--coco-ids", action="store_true",
                        help="with --panoptic-json: use the COCO 133-class contiguous ids")
    parser.add_argument("--workers", type=int, default=0)
    add_output_arguments(parser)
    args = parser.parse_args(argv)

    coco_ids = get_coco_panoptic_metadata()["stuff_dataset_id_to_contiguous_id"]
    if args.panoptic_json:
        if not (args.panoptic_root and args.out_dir):
            parser.error("--panoptic-json needs --panoptic-root and --out-dir")
        jobs = [(args.panoptic_json, args.panoptic_root, args.out_dir, args.coco_ids)]
    else:
        coco = os.path.join(args.root, "coco")
        jobs = [(os.path.join(coco, "annotations", f"panoptic_{s}2017.json"),
                 os.path.join(coco, f"panoptic_{s}2017"),
                 os.path.join(coco, f"panoptic_semseg_{s}2017"), True) for s in args.splits]
    for panoptic_json, panoptic_root, out_dir, use_coco_ids in jobs:
        params = {"panoptic_json": os.path.abspath(panoptic_json),
                  "panoptic_root": os.path.abspath(panoptic_root), "coco_ids": use_coco_ids}
        out = ManagedOutput(out_dir, script=SCRIPT, version=CONVERSIONS_VERSION,
                            parameters=params, force=args.force)
        if already_generated(out):
            continue
        with out.writing() as tmp:
            n = convert_panoptic_to_semantic(
                panoptic_json, panoptic_root, str(tmp), coco_ids if use_coco_ids else None,
                progress=not args.no_progress, num_workers=args.workers)
        print(f"wrote {n} semantic PNGs to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
