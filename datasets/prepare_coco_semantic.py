#!/usr/bin/env python
"""COCO panoptic -> semantic PNGs (contiguous ids 0..132 in COCO category order, 255 unlabelled).

    python datasets/prepare_coco_semantic.py    # -> coco/panoptic_semseg_{train,val}2017
    python datasets/prepare_coco_semantic.py --splits val --workers 8
    python datasets/prepare_coco_semantic.py --panoptic-json J --panoptic-root P --out-dir O

Reads $DETECTRON2_DATASETS/coco/annotations/panoptic_{split}2017.json and
coco/panoptic_{split}2017/; writes coco/panoptic_semseg_{split}2017/ (see datasets/README.md).
With --panoptic-json the ids follow that json's category order unless --coco-ids is given.
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
    parser.add_argument("--panoptic-json", help="convert this json instead of COCO 2017")
    parser.add_argument("--panoptic-root", help="PNG directory of --panoptic-json")
    parser.add_argument("--out-dir", help="output directory for --panoptic-json")
    parser.add_argument("--coco-ids", action="store_true",
                        help="with --panoptic-json: use the COCO 133-class contiguous ids")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--skip-existing", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from omgseg.data.datasets.coco_panoptic import get_coco_panoptic_metadata
    from omgseg.data.datasets.panoptic_conversions import convert_panoptic_to_semantic

    coco_ids = get_coco_panoptic_metadata()["stuff_dataset_id_to_contiguous_id"]
    if args.panoptic_json:
        if not (args.panoptic_root and args.out_dir):
            parser.error("--panoptic-json needs --panoptic-root and --out-dir")
        jobs = [(args.panoptic_json, args.panoptic_root, args.out_dir,
                 coco_ids if args.coco_ids else None)]
    else:
        coco = os.path.join(args.root, "coco")
        jobs = [(os.path.join(coco, "annotations", f"panoptic_{s}2017.json"),
                 os.path.join(coco, f"panoptic_{s}2017"),
                 os.path.join(coco, f"panoptic_semseg_{s}2017"), coco_ids) for s in args.splits]
    for panoptic_json, panoptic_root, out_dir, id_map in jobs:
        n = convert_panoptic_to_semantic(panoptic_json, panoptic_root, out_dir, id_map,
                                         progress=not args.no_progress, num_workers=args.workers,
                                         skip_existing=args.skip_existing)
        print(f"wrote {n} semantic PNGs to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
