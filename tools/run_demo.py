#!/usr/bin/env python
"""`make demo`: the OMG-Shapes synthetic benchmark, every task from ONE checkpoint, on CPU.

1. generate the benchmark (skipped when it is already there with the same parameters);
2. train the tiny config (configs/omg_tiny_synthetic.yaml) on images, videos (and prompts, when
   the config lists them) together, evaluating every TEST.EVAL_PERIOD iterations so the growth of
   every number with training is recorded;
3. print one table: image PQ / mask AP / mIoU, VPQ / STQ, YouTube-VIS AP, VSS mIoU, VOS J&F,
   prompted mIoU — all from the final checkpoint; then the open-vocabulary rows (OV_METRICS:
   image PQ with the frozen-CLIP fusion on, with the training vocabulary, the same names in
   another order, and renamed classes), from the same checkpoint;
4. save pictures: per val image (input | ground truth | panoptic | instances | semantic), per val
   video a frame strip of tracked ids (input / ground truth / prediction), and the VOS tracks.

A second run reuses output/demo/model_final.pth if its config is unchanged (pass --retrain to
train again); --ov-only evaluates only the open-vocabulary rows on the existing checkpoint.
Extra KEY VALUE arguments override the config.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (task, evaluator task key, metric key, label, which test datasets): the rows of the final
# table (table-driven: a config without videos prints the image rows only). A dataset is chosen
# by its metadata: (evaluator_type, vos_prompt) -- "segm" is image mask AP for COCO-style sets and
# YouTube-VIS AP for "ytvis" ones; "vos" is mask-driven or prompt-driven VOS.
DEMO_METRICS = (
    ("image panoptic (PS)", "panoptic_seg", "PQ", "PQ", ("coco_panoptic_seg", "")),
    ("image instance (IS)", "segm", "AP", "mask AP", ("coco_panoptic_seg", "")),
    ("image semantic (SS)", "sem_seg", "mIoU", "mIoU", ("coco_panoptic_seg", "")),
    ("video panoptic (VPS)", "vpq", "VPQ", "VPQ", ("vps", "")),
    ("video panoptic (VPS)", "vpq", "STQ", "STQ", ("vps", "")),
    ("video instance (VIS)", "segm", "AP", "YouTube-VIS AP", ("ytvis", "")),
    ("video semantic (VSS)", "vss", "mIoU", "mIoU", ("vps", "")),
    ("video semantic (VSS)", "vss", "VC8", "VC8", ("vps", "")),
    ("video object (VOS)", "vos", "J&F-Mean", "J&F", ("davis", "")),
    ("prompted (point)", "prompt", "mIoU_point", "mIoU", ("coco_sam", "")),
    ("prompted (box)", "prompt", "mIoU_box", "mIoU", ("coco_sam", "")),
    ("prompted (scribble)", "prompt", "mIoU_scribble", "mIoU", ("coco_sam", "")),
    ("prompt-driven VOS (click)", "vos", "J&F-Mean", "J&F", ("davis", "point")),
    ("prompt-driven VOS (stroke)", "vos", "J&F-Mean", "J&F", ("davis", "scribble")),
)

# (row label, vocabulary variant, fusion on): the open-vocabulary rows, panoptic PQ on the first
# image panoptic test set with the frozen-CLIP fusion ON (MODEL.OMG.OV; OMGSeg.ov_enabled), every
# variant passed to the SAME model through the vocabulary switch (no rebuild). "training": the
# dataset's own class names (all seen in training: exponent ALPHA); "reordered": the same names
# in reverse order (predicted ids are mapped back for the evaluator; must equal "training");
# "renamed": every class given a name absent from the training vocabularies (all unseen:
# exponent BETA). The first row, fusion OFF, is the reference (the image PS row above).
OV_METRICS = (
    ("reference: fusion OFF, training names", "training", False),
    ("open vocab: training names (seen, a=ALPHA)", "training", True),
    ("open vocab: same names, reversed order", "reordered", True),
    ("open vocab: renamed classes (unseen, a=BETA) [*]", "renamed", True),
)
# Names for the "renamed" variant (checked to be unseen before use).
OV_RENAMES = ("lantern", "violin", "pebble", "compass", "saddle", "kettle", "anchor", "feather",
              "tunnel", "meadow", "glacier", "canyon", "harbor", "quilt", "orchard", "beacon")
OV_FOOTNOTE = (
    "[*] The demo's CLIP is the tiny random-init one trained end to end: its text tower and "
    "visual head carry no semantics, so names never seen in training (renamed row) give text "
    "embeddings the model cannot relate to its classes. That row measures what a random CLIP "
    "cannot do; with real pretrained OpenCLIP weights the same switch classifies by meaning."
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config-file", default=os.path.join(REPO, "configs", "omg_tiny_synthetic.yaml")
    )
    parser.add_argument("--retrain", action="store_true", help="train even if a final model exists")
    parser.add_argument("--num-vis", type=int, default=8, help="validation images to draw")
    parser.add_argument("--num-vis-videos", type=int, default=3, help="validation videos to draw")
    parser.add_argument("--ov-only", action="store_true",
                        help="only evaluate the open-vocabulary rows on the existing "
                             "output/demo/model_final.pth (no training, no other evaluation)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


def generate_data():
    script = os.path.join(REPO, "datasets", "prepare_synthetic.py")
    subprocess.run([sys.executable, script], check=True)


def dataset_summary(names):
    from detectron2.data import DatasetCatalog
    from tabulate import tabulate

    rows = []
    for name in dict.fromkeys(names):
        dicts = DatasetCatalog.get(name)
        frames = sum(int(d.get("length", 1)) for d in dicts)
        rows.append([name, len(dicts), frames])
    return tabulate(rows, headers=["dataset", "records", "frames"], tablefmt="github")


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


def _per_dataset(results, test_names):
    """Detectron2 returns {task: ...} for one test dataset and {dataset: {task: ...}} for more."""
    if len(test_names) == 1 and not all(k in test_names for k in results):
        return {test_names[0]: results}
    return results


def metric_rows(results, test_names):
    """[(task, dataset, label, value)] for every DEMO_METRICS entry a test dataset reports."""
    from detectron2.data import MetadataCatalog

    rows = []
    per_dataset = _per_dataset(results, test_names)
    for task, key, metric, label, kind in DEMO_METRICS:
        for name in test_names:
            meta = MetadataCatalog.get(name)
            if (meta.get("evaluator_type", None), meta.get("vos_prompt", "")) != kind:
                continue
            res = per_dataset.get(name, {}).get(key, {})
            if metric in res:
                rows.append((task, name, label, float(res[metric])))
    return rows


def results_table(results, test_names) -> str:
    from tabulate import tabulate

    rows = [[task, label, f"{value:.1f}", name]
            for task, name, label, value in metric_rows(results, test_names)]
    return tabulate(rows, headers=["task", "metric", "value", "dataset"], tablefmt="github")


def growth_table(output_dir, max_iter, test_names):
    """Every headline number at every periodic evaluation (Detectron2's metrics.json): one row
    per metric, one column per evaluated iteration."""
    from tabulate import tabulate

    path = os.path.join(output_dir, "metrics.json")
    if not os.path.exists(path):
        return ""
    iterations, values = [], {}
    for line in open(path):
        record = json.loads(line)
        nested = {}
        for flat, value in record.items():
            parts = flat.split("/")
            if len(test_names) == 1 and len(parts) == 2:
                parts = [test_names[0]] + parts
            if len(parts) == 3 and parts[0] in test_names:
                nested.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = value
        found = metric_rows(nested, test_names)
        if not found:
            continue
        iterations.append(min(record["iteration"] + 1, max_iter))
        for task, _, label, value in found:
            values.setdefault((task, label), {})[iterations[-1]] = value
    if not iterations:
        return ""
    rows = [[task, label] + [f"{v[i]:.1f}" if i in v else "-" for i in iterations]
            for (task, label), v in values.items()]
    return tabulate(rows, headers=["task", "metric"] + [f"iter {i}" for i in iterations],
                    tablefmt="github", disable_numparse=True)


def visualize_images(cfg, model, dataset_name, out_dir, num):
    """input | ground truth | panoptic | instances | semantic, one PNG per val image."""
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


def ov_vocabularies(model, dataset_name):
    """Per OV_METRICS variant: (vocabulary, dataset id of each of its class ids)."""
    from omgseg.modeling.vocabulary import Vocabulary, dataset_vocabulary

    base = dataset_vocabulary(dataset_name)
    k = len(base)
    reverse = list(range(k))[::-1]
    renamed = [OV_RENAMES[i] if i < len(OV_RENAMES) else f"novel class {i}" for i in range(k)]
    variants = {
        "training": (base, list(range(k))),
        "reordered": (Vocabulary([base.names[i] for i in reverse],
                                 [base.is_thing[i] for i in reverse]), reverse),
        "renamed": (Vocabulary(renamed, base.is_thing), list(range(k))),
    }
    if bool(model.seen_classes(variants["renamed"][0]).any()):
        raise RuntimeError(f"A renamed class of {renamed} is in the training vocabulary")
    if not bool(model.seen_classes(base).all()):
        print(f"[demo] note: not every class of {dataset_name} is in the training vocabulary")
    return variants


class _VocabularyEval:
    """The model classifying against ``vocab`` (its default vocabulary: inputs lose their
    ``dataset_name``), panoptic output only, class ids mapped back to the dataset's."""

    def __init__(self, model, vocab, to_dataset):
        self.model, self.vocab, self.to_dataset = model, vocab, to_dataset

    def __call__(self, batched_inputs):
        inputs = [{k: v for k, v in inp.items() if k != "dataset_name"} for inp in batched_inputs]
        outputs = self.model(inputs)
        for out in outputs:
            for seg in out["panoptic_seg"][1]:
                seg["category_id"] = self.to_dataset[seg["category_id"]]
        return outputs


def evaluate_open_vocab(cfg, model, dataset_name):
    """[(label, variant, fusion on, PQ)] for OV_METRICS on ``dataset_name``; the model's
    vocabulary, fusion and output switches are restored afterwards."""
    from detectron2.evaluation import COCOPanopticEvaluator, inference_on_dataset

    from omgseg.engine import Trainer

    saved = (model.default_vocabulary, model.ov_enabled, model.semantic_on, model.instance_on,
             model.panoptic_on)
    training = model.training
    rows = []
    try:
        model.eval()
        model.semantic_on, model.instance_on, model.panoptic_on = False, False, True
        loader = Trainer.build_test_loader(cfg, dataset_name)
        variants = ov_vocabularies(model, dataset_name)
        for label, variant, fusion in OV_METRICS:
            vocab, to_dataset = variants[variant]
            model.set_vocabulary(vocab)
            model.ov_enabled = fusion
            evaluator = COCOPanopticEvaluator(dataset_name, output_dir=None)
            res = inference_on_dataset(_VocabularyEval(model, vocab, to_dataset), loader,
                                       evaluator)
            rows.append((label, variant, fusion, float(res["panoptic_seg"]["PQ"])))
            print(f"[demo] {_ov_label(label, cfg)}: PQ {rows[-1][3]:.1f}")
    finally:
        (model.default_vocabulary, model.ov_enabled, model.semantic_on, model.instance_on,
         model.panoptic_on) = saved
        model.train(training)
    return rows


def _ov_label(label: str, cfg) -> str:
    """An OV_METRICS label with ALPHA / BETA replaced by the config's values."""
    ov = cfg.MODEL.OMG.OV
    return label.replace("ALPHA", f"{ov.ALPHA:g}").replace("BETA", f"{ov.BETA:g}")


def open_vocab_table(rows, dataset_name, cfg) -> str:
    from tabulate import tabulate

    table = [[_ov_label(label, cfg), "PQ", f"{pq:.1f}", dataset_name]
             for label, _, _, pq in rows]
    return tabulate(table, headers=["task", "metric", "value", "dataset"], tablefmt="github",
                    disable_numparse=True)


def run_open_vocab(cfg, model, test_names):
    """The OV rows on the first image panoptic test set (printed, saved to open_vocab.json)."""
    image_set = _first(test_names, "coco_panoptic_seg")
    if not image_set:
        return ""
    start = time.time()
    rows = evaluate_open_vocab(cfg, model, image_set)
    ov = cfg.MODEL.OMG.OV
    with open(os.path.join(cfg.OUTPUT_DIR, "open_vocab.json"), "w") as f:
        json.dump({"dataset": image_set, "alpha": ov.ALPHA, "beta": ov.BETA,
                   "seconds": time.time() - start,
                   "PQ": {(variant if fusion else f"{variant} (fusion off)"): pq
                          for _, variant, fusion, pq in rows}}, f, indent=2)
    return (f"Open vocabulary (frozen-CLIP fusion ON, same checkpoint, vocabulary switched at run "
            f"time):\n{open_vocab_table(rows, image_set, cfg)}\n{OV_FOOTNOTE}")


def _strip_frames(length: int, count: int = 6):
    import numpy as np

    return sorted(set(np.linspace(0, length - 1, min(count, length)).round().astype(int)))


def _save_video_strips(cfg, model, dataset_name, out_dir, num, task, suffix, draw):
    """Per val video of ``dataset_name`` (the first ``num``): the model's ``task`` output and a
    frame strip, rows input / ground truth / prediction, columns evenly spaced frames, saved as
    ``<video_id>_<suffix>.png``. ``draw(record, out, t, image)`` gives frame ``t``'s (ground
    truth, prediction) pictures."""
    import cv2
    import torch
    from detectron2.data import DatasetCatalog
    from detectron2.data.detection_utils import read_image

    from omgseg.data.build import build_test_mapper
    from omgseg.utils.visualization import frame_strip

    os.makedirs(out_dir, exist_ok=True)
    mapper = build_test_mapper(cfg, dataset_name)
    model.eval()
    paths = []
    for record in DatasetCatalog.get(dataset_name)[:num]:
        inp = mapper(dict(record))
        with torch.no_grad():
            out = model.video_inference(inp, tasks=(task,))
        rows = [[], [], []]
        for t in _strip_frames(int(record["length"])):
            image = read_image(record["file_names"][t], format="RGB")
            gt_picture, pred_picture = draw(record, out, t, image)
            rows[0].append(image)
            rows[1].append(gt_picture)
            rows[2].append(pred_picture)
        path = os.path.join(out_dir, f"{record['video_id']}_{suffix}.png")
        cv2.imwrite(path, frame_strip(rows)[:, :, ::-1])
        paths.append(path)
    return paths


def visualize_videos(cfg, model, dataset_name, out_dir, num):
    """Per val video a frame strip of tracked ids: rows input / ground truth / prediction,
    columns evenly spaced frames; a track keeps its colour (and #id) through the video."""
    import numpy as np
    from detectron2.data import MetadataCatalog
    from panopticapi.utils import rgb2id
    from PIL import Image

    from omgseg.utils.visualization import draw_panoptic_tracks

    meta = MetadataCatalog.get(dataset_name)

    def draw(record, out, t, image):
        gt_ids = rgb2id(np.asarray(Image.open(record["pan_seg_file_names"][t]), np.uint32))
        ids, segments = out["frames"][t]["panoptic_seg"]
        ids = ids.numpy() if hasattr(ids, "numpy") else np.asarray(ids)
        return (draw_panoptic_tracks(image, gt_ids, record["segments_infos"][t], meta),
                draw_panoptic_tracks(image, ids, segments, meta))

    return _save_video_strips(cfg, model, dataset_name, out_dir, num, "panoptic", "vps", draw)


def visualize_vos(cfg, model, dataset_name, out_dir, num, suffix="vos"):
    """Per val video (DAVIS layout): input / ground truth / tracked objects from frame 0's masks
    (or, for a prompt-driven VOS set, from one click / stroke per object on frame 0)."""
    import numpy as np
    from PIL import Image

    from omgseg.utils.visualization import draw_index_map

    def draw(record, out, t, image):
        gt_file = record["mask_file_names"][t]
        gt = np.asarray(Image.open(gt_file)) if gt_file else np.zeros(image.shape[:2], np.uint8)
        return draw_index_map(image, gt), draw_index_map(image, np.asarray(out["vos_masks"][t]))

    return _save_video_strips(cfg, model, dataset_name, out_dir, num, "vos", suffix, draw)


def visualize_prompts(cfg, model, dataset_name, out_dir, num):
    """Per val image: the same objects prompted by a click, a box and a stroke (one panel each:
    prompts drawn in white, each answer in its prompt's colour with its open-vocabulary label)."""
    import cv2
    import numpy as np
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.detection_utils import read_image

    from omgseg.data.dataset_mappers.targets import load_frame_targets
    from omgseg.data.prompts import center_point, center_scribble
    from omgseg.inference import PromptPredictor
    from omgseg.modeling.vocabulary import Vocabulary
    from omgseg.utils.visualization import draw_index_map, frame_strip

    os.makedirs(out_dir, exist_ok=True)
    predictor = PromptPredictor(cfg, input_format="RGB", model=model.eval())
    names = Vocabulary.from_metadata(MetadataCatalog.get(dataset_name)).names
    predictor.set_vocabulary(list(names))
    paths = []
    for record in DatasetCatalog.get(dataset_name)[:num]:
        image = read_image(record["file_name"], format="RGB")
        masks = load_frame_targets(record, image.shape[:2], "panoptic").to_masks()
        masks = masks[masks.reshape(len(masks), -1).sum(1) >= 64][:6]  # a few visible objects
        if not len(masks):
            continue
        predictor.set_image(image)
        points = [center_point(m) for m in masks]
        boxes = [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                 for ys, xs in (np.nonzero(m) for m in masks)]
        strokes = [center_scribble(m) for m in masks]
        panels = []
        for kind, kwargs in (("click", {"points": points}), ("box", {"boxes": boxes}),
                             ("stroke", {"masks": np.stack(strokes)})):
            result = predictor.predict(**kwargs)
            index = np.zeros(image.shape[:2], np.uint8)
            for k in np.argsort(-result.masks.reshape(len(masks), -1).sum(1)):
                index[result.masks[k]] = k + 1  # smaller answers on top
            labels = {k + 1: f"{result.labels[k]}" for k in range(len(masks))}
            pic = draw_index_map(image, index, scale=2.0, labels=labels)
            for k in range(len(masks)):  # the prompts, in white, on top
                if kind == "click":
                    x, y = points[k]
                    cv2.circle(pic, (int(2 * x + 1), int(2 * y + 1)), 5, (255, 255, 255), -1)
                elif kind == "box":
                    x0, y0, x1, y1 = boxes[k]
                    cv2.rectangle(pic, (int(2 * x0), int(2 * y0)), (int(2 * x1), int(2 * y1)),
                                  (255, 255, 255), 2)
                else:
                    up = cv2.resize(strokes[k].astype(np.uint8), pic.shape[1::-1],
                                    interpolation=cv2.INTER_NEAREST).astype(bool)
                    pic[up] = 255
            panels.append(pic)
        stem = os.path.splitext(os.path.basename(record["file_name"]))[0]
        path = os.path.join(out_dir, f"{stem}_prompts.png")
        cv2.imwrite(path, frame_strip([panels])[:, :, ::-1])
        paths.append(path)
    return paths


def _first(names, evaluator_type, vos_prompt=""):
    from detectron2.data import MetadataCatalog

    return next((n for n in names
                 if MetadataCatalog.get(n).get("evaluator_type") == evaluator_type
                 and MetadataCatalog.get(n).get("vos_prompt", "") == vos_prompt), None)


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

    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    if not os.path.isabs(cfg.OUTPUT_DIR):
        cfg.OUTPUT_DIR = os.path.join(REPO, cfg.OUTPUT_DIR)
    cfg.MODEL.OMG.TEST.VIDEO.PROGRESS_BAR = False
    cfg.freeze()
    setup_logger(output=cfg.OUTPUT_DIR)
    setup_logger(output=cfg.OUTPUT_DIR, name="omgseg")
    torch.set_num_threads(os.cpu_count() or 1)
    test_names = list(cfg.DATASETS.TEST)
    print(dataset_summary(list(cfg.DATASETS.TRAIN) + test_names))

    if args.ov_only:
        final = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
        if not os.path.exists(final):
            raise SystemExit(f"--ov-only needs a trained {final}: run the demo first")
        model = Trainer.build_model(cfg)
        OMGSegCheckpointer(cfg, model).load(final)
        print(run_open_vocab(cfg, model, test_names))
        return None

    print(f"[demo] 2/4 training {cfg.MODEL.OMG.CLIP.MODEL_NAME} for {cfg.SOLVER.MAX_ITER} "
          "iterations on CPU (images, videos and prompts together)")
    seconds, results = train(cfg, args.retrain)

    model = Trainer.build_model(cfg)
    OMGSegCheckpointer(cfg, model).load(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
    eval_start = time.time()
    if results:
        print("[demo] 3/4 evaluation of the final model: done by the trainer after the last "
              "iteration")
    else:
        print("[demo] 3/4 evaluating on", ", ".join(test_names))
        results = Trainer.test(cfg, model)
    with open(os.path.join(cfg.OUTPUT_DIR, "results.json"), "w") as f:
        json.dump(results, f, indent=2, default=float)
    open_vocab = run_open_vocab(cfg, model, test_names)

    print("[demo] 4/4 pictures")
    vis_dir = os.path.join(cfg.OUTPUT_DIR, "vis")
    pictures = []
    # (evaluator type, VOS prompt mode, drawing, how many, extra arguments)
    drawings = [
        ("coco_panoptic_seg", "", visualize_images, args.num_vis, {}),
        ("vps", "", visualize_videos, args.num_vis_videos, {}),
        ("davis", "", visualize_vos, args.num_vis_videos, {}),
        ("coco_sam", "", visualize_prompts, args.num_vis_videos, {}),
    ] + [("davis", mode, visualize_vos, args.num_vis_videos, {"suffix": f"prompt_vos_{mode}"})
         for mode in ("point", "scribble")]
    for evaluator_type, vos_prompt, draw, count, extra in drawings:
        name = _first(test_names, evaluator_type, vos_prompt)
        if name:
            pictures += draw(cfg, model, name, vis_dir, count, **extra)
    picture_seconds = time.time() - eval_start

    print()
    growth = growth_table(cfg.OUTPUT_DIR, cfg.SOLVER.MAX_ITER, test_names)
    if growth:
        print("Evaluation during training:")
        print(growth)
        print()
    print("Final results (one checkpoint, every task):")
    print(results_table(results, test_names))
    if open_vocab:
        print()
        print(open_vocab)
    if seconds is not None:
        print(f"\ntraining (with periodic evaluation): {seconds / 60:.1f} min on "
              f"{os.cpu_count()} CPU cores; pictures: {picture_seconds / 60:.1f} min")
    print(f"pictures: {vis_dir}/ (images: input | ground truth | panoptic | instances | "
          f"semantic; *_prompts.png: click | box | stroke; videos *_vps.png, *_vos.png, "
          f"*_prompt_vos_*.png: rows input / ground truth / prediction)")
    return results


if __name__ == "__main__":
    main()
