#!/usr/bin/env python
"""Convert an official OMG-Seg head (lxtGH/OMG-Seg release) to a Detectron2 checkpoint.

    python tools/convert_omgseg_official.py omg_seg_convl.pth omg_seg_convl_d2.pth
    python train_net.py --config-file configs/omg_convnext_large.yaml --eval-only \\
        MODEL.WEIGHTS omg_seg_convl_d2.pth

The released files (``omg_seg_convl.pth``, ``omg_seg_convxxl.pth``) hold the head only; the
frozen backbone comes from OpenCLIP (``MODEL.OMG.CLIP.PRETRAINED``: the tag, or a local
OpenCLIP checkpoint file when offline). The variant and every width are read from the tensors;
the file is written only when each official tensor has its counterpart, with the same shape, in
the head this repository builds for those widths. OUT is written to a temporary file and renamed,
and an existing OUT is kept unless --force.
"""
import argparse
import sys
import warnings

with warnings.catch_warnings():
    # fvcore.nn and detectron2.modeling call torch.jit.script at import time, which recent
    # PyTorch deprecates with a FutureWarning on every run; silence exactly that one, here.
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    from omgseg.checkpoint import CheckpointError, convert_official_checkpoint


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", metavar="IN", help="official head file (.pth)")
    parser.add_argument("output", metavar="OUT", help="Detectron2 checkpoint to write (.pth)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    args = parser.parse_args(argv)
    try:
        report = convert_official_checkpoint(args.input, args.output, force=args.force)
    except (CheckpointError, FileExistsError, IsADirectoryError) as e:
        print(f"convert_omgseg_official.py: error: {e}", file=sys.stderr)
        return 1
    print(report.format())
    config = report.widths.config_file or "<a config with these widths>"
    print(
        f"Use it with: python train_net.py --config-file {config} --eval-only "
        f"MODEL.WEIGHTS {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
