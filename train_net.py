#!/usr/bin/env python
"""OMG-Seg training and evaluation, the Detectron2 way (after ``pip install -e .``).

    python train_net.py --config-file configs/omg_convnext_large.yaml --num-gpus 8
    python train_net.py --config-file configs/omg_convnext_large.yaml --eval-only \
        MODEL.WEIGHTS omg.pth
    python train_net.py --config-file configs/omg_tiny_synthetic.yaml --num-gpus 2 MODEL.DEVICE cpu

A config that cannot work (OUTPUT_DIR is a file, MODEL.DEVICE cuda without CUDA, an unregistered
dataset) or weights that do not fit the model end the run with a one-line error, before any
process is started or file written.
"""
import sys
import warnings

with warnings.catch_warnings():
    # fvcore.nn and detectron2.modeling call torch.jit.script at import time, which recent
    # PyTorch deprecates with a FutureWarning on every run; silence exactly that one, here.
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    import omgseg  # noqa: F401  (registers config, datasets, model)
    from detectron2.engine import default_argument_parser
    from detectron2.utils import comm

    from omgseg.checkpoint import CheckpointError, OMGSegCheckpointer
    from omgseg.engine import ConfigError, Trainer, launch, setup_cfg
    from omgseg.evaluation.build import format_results_table


def main(args):
    cfg = setup_cfg(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        OMGSegCheckpointer(cfg, model).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
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
    try:
        # Refuse a config that cannot work before any worker starts or anything is written.
        setup_cfg(args, setup_env=False)
        # Detectron2's launch; workers of a multi-process run end without the interpreter
        # teardown that can abort them after the work is done (omgseg/engine/launch.py).
        launch(
            main,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
        )
    except (ConfigError, CheckpointError) as e:
        sys.exit(f"train_net.py: error: {e}")
