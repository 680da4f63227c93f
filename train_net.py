#!/usr/bin/env python
"""OMG-Seg training and evaluation, the Detectron2 way.

    python train_net.py --config-file configs/omg_convnext_large.yaml --num-gpus 8
    python train_net.py --config-file configs/omg_convnext_large.yaml --eval-only MODEL.WEIGHTS omg.pth
    python train_net.py --config-file configs/omg_tiny_synthetic.yaml --num-gpus 2 MODEL.DEVICE cpu
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.engine import default_argument_parser, launch  # noqa: E402
from detectron2.utils import comm  # noqa: E402

import omgseg  # noqa: E402,F401  (registers config, datasets, model)
from omgseg.engine import Trainer, setup_cfg  # noqa: E402
from omgseg.evaluation.build import format_results_table  # noqa: E402


def main(args):
    cfg = setup_cfg(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        results = Trainer.test(cfg, model)
        if comm.is_main_process():
            print(format_results_table(results, dataset_name=",".join(cfg.DATASETS.TEST)))
        return results
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
