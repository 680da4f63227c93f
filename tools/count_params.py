#!/usr/bin/env python
"""Print the parameter counts of an OMG-Seg config (built with random weights, nothing downloaded).

    python tools/count_params.py --config-file configs/omg_convnext_large.yaml
"""
import argparse
import os


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", nargs="+", required=True)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    args = parser.parse_args(argv)

    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from tabulate import tabulate

    from omgseg import add_omgseg_config

    rows = []
    for path in args.config_file:
        cfg = get_cfg()
        add_omgseg_config(cfg)
        cfg.merge_from_file(path)
        # Count with random weights; the vocabulary is irrelevant to the size.
        cfg.merge_from_list(
            ["MODEL.OMG.CLIP.PRETRAINED", "", "MODEL.DEVICE", "cpu",
             "DATASETS.TEST", "()", "DATASETS.TRAIN", "()"] + args.opts
        )
        model = build_model(cfg)
        total = count(model)
        backbone = count(model.backbone)
        head = total - backbone
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append([
            os.path.basename(path), cfg.MODEL.OMG.CLIP.MODEL_NAME, f"{total / 1e6:.2f}M",
            f"{backbone / 1e6:.2f}M", f"{head / 1e6:.2f}M",
            f"{count(model.pixel_decoder) / 1e6:.2f}M", f"{count(model.mask_decoder) / 1e6:.2f}M",
            f"{trainable / 1e6:.2f}M",
        ])
        del model
    print(tabulate(rows, headers=["config", "CLIP model", "total", "backbone (visual)", "head",
                                  "pixel decoder", "mask decoder", "trainable"], tablefmt="github"))


if __name__ == "__main__":
    main()
