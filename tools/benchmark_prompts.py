#!/usr/bin/env python
"""Cost of a re-prompt against a full forward (encode once, decode per prompt set).

For each model (the tiny synthetic config and ConvNeXt-L with random weights built by open_clip,
nothing downloaded) on one random image of ``--image-size``:

* full forward: ``model([{"image": ...}])``, the plain panoptic / instance / semantic inference
  (backbone, pixel decoder, decoder with the semantic queries, post-processing);
* ``set_image``: test resize + backbone + pixel decoder + decoder memory, cached;
* prompts on the cached image (prompt mapping, location-query decoder, masks at the original
  size): the first ``predict(points=[one click])`` right after ``set_image``; then ``--clicks``
  re-prompts, the same call again (what each further click costs: clicks 2, 3, ...);
  ``predict`` of 10 mixed prompts (points, boxes, a scribble, a polygon, two masks) in one call.

Each round runs full forward, set_image, first prompt, the re-prompts and 10 prompts in turn, so
every round starts with caches cold from the full forward and set_image. Reported, in ms and as
ratios to the full forward, as medians over ``--repeats`` rounds: the re-prompt (per round the
median of its ``--clicks`` re-prompts; target <= 5 %) and, separately, the second click (the
first re-prompt, still warming caches). Prints a README-ready Markdown table.

    .venv/bin/python tools/benchmark_prompts.py                      # tiny + ConvNeXt-L
    .venv/bin/python tools/benchmark_prompts.py --models tiny --repeats 50
    .venv/bin/python tools/benchmark_prompts.py --threads 1          # steadier on a shared box
    python tools/benchmark_prompts.py --device cuda                  # on a GPU (synchronised)
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS = {
    # name: (config file, overrides, default image size H x W, vocabulary size)
    "tiny": ("configs/omg_tiny_synthetic.yaml", [], (192, 192)),
    "convnext_large": ("configs/omg_convnext_large.yaml", ["MODEL.OMG.CLIP.PRETRAINED", ""],
                       (480, 640)),
}


def build(name: str, cache_dir: str, vocabulary: List[str], device: str = "cpu"):
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from omgseg import add_omgseg_config
    from omgseg.inference import PromptPredictor

    config, overrides, _ = MODELS[name]
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(os.path.join(REPO_ROOT, config))
    cfg.merge_from_list(overrides + ["MODEL.OMG.CLIP.TEXT_CACHE_DIR", cache_dir, "MODEL.DEVICE",
                                     device, "DATASETS.TEST", "()", "DATASETS.TRAIN", "()"])
    model = build_model(cfg).eval()
    predictor = PromptPredictor(cfg, input_format="RGB", model=model)
    predictor.set_vocabulary(vocabulary)
    return cfg, model, predictor


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()  # GPU work is asynchronous: time it to its end


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        _synchronize()
        t0 = time.perf_counter()
        fn()
        _synchronize()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def mixed_prompts(h: int, w: int) -> Dict:
    mask = np.zeros((h, w), dtype=bool)
    mask[h // 4: h // 2, w // 4: w // 2] = True
    return dict(
        points=[[w * 0.2, h * 0.3], [w * 0.7, h * 0.6], [w * 0.5, h * 0.5]],
        boxes=[[w * 0.1, h * 0.1, w * 0.4, h * 0.5], [w * 0.5, h * 0.4, w * 0.9, h * 0.9],
               [0, 0, w, h]],
        scribbles=[[[w * 0.2, h * 0.2], [w * 0.3, h * 0.4], [w * 0.35, h * 0.3]]],
        polygons=[[[w * 0.6, h * 0.1], [w * 0.9, h * 0.2], [w * 0.7, h * 0.4]]],
        masks=[mask, ~mask],
    )


def run(name: str, size, repeats: int, clicks: int, cache_dir: str,
        device: str = "cpu") -> Dict[str, float]:
    from detectron2.data import transforms as T

    vocabulary = ["person", "car", "dog", "cat", "tree", "sky", "road", "grass", "building",
                  "water"]
    cfg, model, predictor = build(name, cache_dir, vocabulary, device)
    h, w = size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    resized = aug.get_transform(image).apply_image(image)
    tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
    inputs = [{"image": tensor, "height": h, "width": w}]
    one_point = dict(points=[[w * 0.5, h * 0.5]])
    mixed = mixed_prompts(h, w)

    def full():  # same autograd mode as the predictor's decoder
        with torch.inference_mode():
            return model(inputs)

    # warm-up (text embeddings, allocator)
    full()
    predictor.set_image(image, image_format="RGB")
    predictor.predict(**one_point)
    predictor.predict(**mixed)
    stats = {"full": [], "set_image": [], "first": [], "second": [], "one": [], "mixed": []}
    for _ in range(repeats):  # interleaved rounds
        stats["full"].append(median_ms(full, 1))
        stats["set_image"].append(median_ms(lambda: predictor.set_image(image, "RGB"), 1))
        stats["first"].append(median_ms(lambda: predictor.predict(**one_point), 1))
        times = [median_ms(lambda: predictor.predict(**one_point), 1) for _ in range(clicks)]
        stats["second"].append(times[0])
        stats["one"].append(statistics.median(times))
        stats["mixed"].append(median_ms(lambda: predictor.predict(**mixed), 1))
    out = {k: statistics.median(v) for k, v in stats.items()}
    out["input"] = f"{h}x{w} -> {tensor.shape[1]}x{tensor.shape[2]}"
    out["queries"] = cfg.MODEL.OMG.NUM_OBJECT_QUERIES
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--repeats", type=int, default=0,
                        help="timed runs per model (default: 30 tiny, 3 ConvNeXt-L)")
    parser.add_argument("--clicks", type=int, default=5,
                        help="re-prompts per round after the first prompt (default 5)")
    parser.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="original image size (default per model)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu", help="MODEL.DEVICE: cpu (default) or cuda")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="omgseg-bench-prompts-") as cache_dir:
        for name in args.models:
            size = tuple(args.image_size) if args.image_size else MODELS[name][2]
            repeats = args.repeats or (30 if name == "tiny" else 3)
            r = run(name, size, repeats, max(1, args.clicks), cache_dir, args.device)
            rows.append((name, r, repeats))
            print(f"[{name}] {r}", flush=True)
    where = "CPU" if args.device == "cpu" else torch.cuda.get_device_name(args.device)
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, {where}, batch 1, "
          f"median of interleaved runs; load average {os.getloadavg()[0]:.1f}\n")
    print("| model | input (original -> resized) | full forward (ms) | set_image (ms) | "
          "first prompt (ms) | re-prompt, 1 point (ms) | second click (ms) | 10 prompts (ms) | "
          "**re-prompt / full** | second click / full | first / full | 10 prompts / full |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r, repeats in rows:
        ratio = {k: f"{100 * r[k] / r['full']:.1f} %" for k in ("one", "second", "first", "mixed")}
        print(f"| {name} ({r['queries']} queries, {repeats} rounds) | {r['input']} | "
              f"{r['full']:.1f} | {r['set_image']:.1f} | {r['first']:.2f} | {r['one']:.2f} | "
              f"{r['second']:.2f} | {r['mixed']:.2f} | **{ratio['one']}** | {ratio['second']} | "
              f"{ratio['first']} | {ratio['mixed']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
