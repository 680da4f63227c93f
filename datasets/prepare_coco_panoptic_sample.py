#!/usr/bin/env python
"""Derive the semantic PNGs and the things-only instances json of a COCO panoptic sample folder
(input_images/, panoptic_examples/, panoptic_examples.json; read-only) into an output folder:

    python datasets/prepare_coco_panoptic_sample.py --sample-dir S [--out O]
    # O (default $DETECTRON2_DATASETS/coco_panoptic_sample): panoptic_semseg/*.png, instances.json

Then register it with ``omgseg.data.datasets.register_coco_panoptic_sample(name, S, O)``.
O must be new, empty or written by this script (.omgseg-manifest.json); a second run with the
same sample says "already generated".
"""
import argparse
import os
import sys

from omgseg.data.datasets.coco_panoptic import get_coco_panoptic_metadata
from omgseg.data.datasets.utils import require_dir, require_file
from omgseg.utils.file_io import ManagedOutput

from panoptic_conversions import (  # siblings
    CONVERSIONS_VERSION,
    convert_panoptic_to_instances,
    convert_panoptic_to_semantic,
)
from prepare_common import DEFAULT_ROOT, add_output_arguments, already_generated, cli_main

SCRIPT = "datasets/prepare_coco_panoptic_sample.py"


def prepare_coco_panoptic_sample(sample_dir: str, out_root: str, force: bool = False,
                                 progress: bool = False) -> bool:
    """Write ``out_root/{panoptic_semseg/, instances.json}`` from ``sample_dir`` unless already
    there. Returns True if written now."""
    out = ManagedOutput(out_root, script=SCRIPT, version=CONVERSIONS_VERSION,
                        parameters={"sample_dir": os.path.abspath(sample_dir)}, force=force)
    if already_generated(out):
        return False
    pan_json = require_file(os.path.join(sample_dir, "panoptic_examples.json"),
                            "COCO sample panoptic json")
    pan_root = require_dir(os.path.join(sample_dir, "panoptic_examples"),
                           "COCO sample panoptic PNG directory")
    id_map = get_coco_panoptic_metadata()["stuff_dataset_id_to_contiguous_id"]
    with out.writing() as tmp:
        convert_panoptic_to_semantic(pan_json, pan_root, os.path.join(tmp, "panoptic_semseg"),
                                     id_map, progress=progress)
        convert_panoptic_to_instances(pan_json, pan_root, os.path.join(tmp, "instances.json"),
                                      progress=progress)
    print(f"wrote the semantic PNGs and instances.json of {sample_dir} to {out_root}")
    return True


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample-dir", required=True, help="the COCO panoptic sample folder")
    parser.add_argument("--out", default=os.path.join(DEFAULT_ROOT, "coco_panoptic_sample"),
                        help="default: $DETECTRON2_DATASETS/coco_panoptic_sample")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    prepare_coco_panoptic_sample(args.sample_dir, args.out, args.force, not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
