#!/usr/bin/env python
"""`make demo`: the OMG-Shapes synthetic benchmark, end to end on CPU.

1. generate the benchmark (skipped when it is already there with the same parameters);
2. train the tiny config (configs/omg_tiny_synthetic.yaml), evaluating every EVAL_PERIOD
   iterations so the growth of PQ / AP / mIoU with training time is recorded;
3. evaluate the final model on the val split and print PQ / mask AP / mIoU as a table;
4. save Detectron2 Visualizer pictures (input | ground truth | panoptic | instances | semantic).

A second run reuses output/demo/model_final.pth if its config is unchanged (pass --retrain to
train again). Extra KEY VALUE arguments override the config.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config-file", default=os.path.join(REPO, "configs", "omg_tiny_synthetic.yaml")
    )
    parser.add_argument("--retrain", action="store_true", help="train even if a final model exists")
    parser.add_argument("--num-vis", type=int, default=8, help="validation images to draw")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


def generate_data():
    script = os.path.join(REPO, "datasets", "prepare_synthetic.py")
    subprocess.run([sys.executable, script], check=True)


def dataset_summary(names):
    from detectron2.data import DatasetCatalog
    from tabulate import tabulate

    rows = []
    for name in names:
        dicts = DatasetCatalog.get(name)
        segments = sum(len(d.get("segments_info", d.get("annotations", []))) for d in dicts)
        rows.append([name, len(dicts), segments])
    return tabulate(rows, headers=["dataset", "records", "segments"], tablefmt="github")


def train(cfg, retrain: bool):
    """Train unless a final model with the same config exists.

    Returns (training seconds, results of the evaluation Detectron2 runs after the last
    iteration), or (None, None) when training was skipped.
    """
    from omgseg.engine import Trainer

    final = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    stamp = os.path.join(cfg.OUTPUT_DIR, "demo_config.yaml")
    same_config = os.path.exists(stamp) and open(stamp).read() == cfg.dump()
    if not retrain and os.path.exists(final) and same_config:
        print(f"[demo] reusing {final} (same config; pass --retrain to train again)")
        return None, None
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    start = time.time()
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    seconds = time.time() - start
    with open(stamp, "w") as f:
        f.write(cfg.dump())
    with open(os.path.join(cfg.OUTPUT_DIR, "train_time.json"), "w") as f:
        json.dump({"seconds": seconds, "iterations": cfg.SOLVER.MAX_ITER}, f)
    return seconds, getattr(trainer, "_last_eval_results", None)


def growth_table(output_dir, max_iter):
    """PQ / AP / mIoU of the periodic evaluations (metrics.json written by Detectron2's hooks)."""
    from tabulate import tabulate

    path = os.path.join(output_dir, "metrics.json")
    if not os.path.exists(path):
        return ""
    rows = []
    for line in open(path):
        record = json.loads(line)
        if "panoptic_seg/PQ" in record:
            rows.append([min(record["iteration"] + 1, max_iter), record.get("panoptic_seg/PQ"),
                         record.get("segm/AP"), record.get("sem_seg/mIoU")])
    if not rows:
        return ""
    return tabulate(
        rows, headers=["iteration", "PQ", "mask AP", "mIoU"], tablefmt="github", floatfmt=".1f"
    )


def visualize(cfg, model, dataset_name, out_dir, num):
    import cv2
    import numpy as np
    import torch
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.detection_utils import read_image
    from detectron2.utils.visualizer import ColorMode, Visualizer
    from panopticapi.utils import rgb2id
    from PIL import Image

    from omgseg.data.build import build_test_mapper

    os.makedirs(out_dir, exist_ok=True)
    meta = MetadataCatalog.get(dataset_name)
    mapper = build_test_mapper(cfg, dataset_name)
    model.eval()
    paths = []
    for record in DatasetCatalog.get(dataset_name)[:num]:
        inp = dict(mapper(dict(record)), dataset_name=dataset_name)
        with torch.no_grad():
            out = model([inp])[0]
        image = read_image(record["file_name"], format="RGB")

        def visualizer(image=image):
            return Visualizer(image, meta, scale=2.0, instance_mode=ColorMode.IMAGE)

        pan = rgb2id(np.asarray(Image.open(record["pan_seg_file_name"]), dtype=np.uint32))
        gt_ids = torch.from_numpy(pan.astype(np.int64))
        gt = visualizer().draw_panoptic_seg(gt_ids, record["segments_info"]).get_image()
        pred_pan = visualizer().draw_panoptic_seg(*out["panoptic_seg"]).get_image()
        inst = out["instances"]
        inst = inst[inst.scores > 0.5]
        pred_inst = visualizer().draw_instance_predictions(inst).get_image()
        pred_sem = visualizer().draw_sem_seg(out["sem_seg"].argmax(0)).get_image()
        inp_img = cv2.resize(image, gt.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        row = np.concatenate([inp_img, gt, pred_pan, pred_inst, pred_sem], axis=1)
        stem = os.path.splitext(os.path.basename(record["file_name"]))[0]
        path = os.path.join(out_dir, stem + ".png")
        cv2.imwrite(path, row[:, :, ::-1])
        paths.append(path)
    return paths


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("DETECTRON2_DATASETS", os.path.join(REPO, "datasets"))
    print("[demo] 1/4 synthetic benchmark")
    generate_data()

    import torch
    from detectron2.config import get_cfg
    from detectron2.utils.logger import setup_logger

    import omgseg  # noqa: F401  (registers datasets and model)
    from omgseg import add_omgseg_config
    from omgseg.checkpoint import OMGSegCheckpointer
    from omgseg.engine import Trainer
    from omgseg.evaluation.build import format_results_table

    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    if not os.path.isabs(cfg.OUTPUT_DIR):
        cfg.OUTPUT_DIR = os.path.join(REPO, cfg.OUTPUT_DIR)
    cfg.freeze()
    setup_logger(output=cfg.OUTPUT_DIR)
    setup_logger(output=cfg.OUTPUT_DIR, name="omgseg")
    torch.set_num_threads(os.cpu_count() or 1)
    print(dataset_summary(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST)))

    print(f"[demo] 2/4 training {cfg.MODEL.OMG.CLIP.MODEL_NAME} for {cfg.SOLVER.MAX_ITER} "
          "iterations on CPU")
    seconds, results = train(cfg, args.retrain)

    model = Trainer.build_model(cfg)
    OMGSegCheckpointer(cfg, model).load(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
    if results:
        print("[demo] 3/4 evaluation of the final model: done by the trainer after the last "
              "iteration")
    else:
        print("[demo] 3/4 evaluating on", ", ".join(cfg.DATASETS.TEST))
        results = Trainer.test(cfg, model)
    with open(os.path.join(cfg.OUTPUT_DIR, "results.json"), "w") as f:
        json.dump(results, f, indent=2)

    print("[demo] 4/4 pictures")
    vis_dir = os.path.join(cfg.OUTPUT_DIR, "vis")
    paths = visualize(cfg, model, cfg.DATASETS.TEST[0], vis_dir, args.num_vis)

    print()
    growth = growth_table(cfg.OUTPUT_DIR, cfg.SOLVER.MAX_ITER)
    if growth:
        print("Evaluation during training:")
        print(growth)
        print()
    print("Final results:")
    print(format_results_table(results, dataset_name=",".join(cfg.DATASETS.TEST)))
    if seconds is not None:
        print(f"\ntraining time: {seconds / 60:.1f} min on {os.cpu_count()} CPU cores")
    print("pictures (input | ground truth | panoptic | instances | semantic): "
          f"{os.path.dirname(paths[0])}/")


if __name__ == "__main__":
    main()
