#!/usr/bin/env python
"""Peak memory and speed of streaming video inference on 20-, 50- and 200-frame videos.

Each video length runs in a fresh Python process (so that peak memory is that run's own):
the tiny CPU model (``configs/omg_tiny_synthetic.yaml``, random weights, nothing downloaded)
reads a synthetic video lazily (``omgseg.data.video_io.VideoFrames`` over JPEG frames written
to a temporary folder: moving shapes on a textured background), runs it clip by clip
(``OMGSeg.video_inference``, every task: VPS, VSS, VIS, VOS) and then reads the outputs the way
the evaluators do (each frame's panoptic map and label map, each VOS index map, one at a time).

Reported per length: the peak resident memory of the process (``VmHWM`` from
``/proc/self/status``), the part of it the video run added (``VmHWM`` after the run minus
``VmRSS`` before it, model built and warmed up on a 2-frame video), seconds per frame of the
model's clip loop plus the instance tubes (``inference``) and of the per-frame outputs read
afterwards (``outputs``). Memory must not grow with the video length: the script exits with
status 1 when the peak at the longest length is above ``--max-ratio`` (1.1) times the peak at
the shortest.

    .venv/bin/python tools/benchmark_video.py                      # 20, 50, 200 frames
    .venv/bin/python tools/benchmark_video.py --lengths 20 200 --size 480 854 --threads 2
    .venv/bin/python tools/benchmark_video.py --opts MODEL.OMG.TEST.INSTANCE_ON False

Timings are wall-clock on a possibly shared CPU (read the printed load average).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO_ROOT, "configs", "omg_tiny_synthetic.yaml")


def _status_kb(field: str) -> int:
    """A ``/proc/self/status`` field in kB (``VmHWM``: peak resident set, ``VmRSS``: now)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(f"{field} is not in /proc/self/status (Linux only)")


def write_video(folder: str, num_frames: int, size: Tuple[int, int], seed: int = 0) -> List[str]:
    """``num_frames`` JPEG frames of two shapes moving over a fixed texture; returns the paths."""
    from PIL import Image

    h, w = size
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 120, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    paths = []
    for t in range(num_frames):
        frame = background.copy()
        cx = int((0.2 + 0.6 * ((t * 3) % 100) / 100) * w)
        frame[(yy - h // 3) ** 2 + (xx - cx) ** 2 < (h // 8) ** 2] = (230, 60, 50)
        x0 = int((0.7 - 0.4 * ((t * 2) % 100) / 100) * w)
        frame[2 * h // 3: 2 * h // 3 + h // 6, x0: x0 + w // 8] = (40, 200, 90)
        path = os.path.join(folder, f"{t:05d}.jpg")
        Image.fromarray(frame).save(path, quality=90)
        paths.append(path)
    return paths


def worker(args) -> Dict:
    """One length, in this (fresh) process: build, warm up, run, read the outputs."""
    import torch

    torch.set_num_threads(args.threads)
    from detectron2.config import get_cfg
    from detectron2.data import transforms as T
    from detectron2.modeling import build_model

    from omgseg import add_omgseg_config
    from omgseg.data.video_io import VideoFrames
    from omgseg.modeling.vocabulary import Vocabulary

    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(args.config)
    cfg.merge_from_list(["MODEL.OMG.CLIP.TEXT_CACHE_DIR", os.path.join(args.tmp, "text_cache"),
                         "DATASETS.TEST", "()", "DATASETS.TRAIN", "()",
                         "MODEL.OMG.TEST.VIDEO.PROGRESS_BAR", "False",
                         "MODEL.OMG.TEST.VIDEO.TMP_DIR", os.path.join(args.tmp, "stores")]
                        + list(args.opts))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    model.set_vocabulary(Vocabulary(["red disc", "green box", "background"], [True, True, False]))
    aug = [T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)]
    files = sorted(os.path.join(args.frames, n) for n in os.listdir(args.frames))[: args.length]
    h, w = args.size
    first = np.zeros((2, h, w), dtype=bool)
    first[0, : h // 2, : w // 2] = True
    first[1, h // 2:, w // 2:] = True

    def run(frame_files):
        frames = VideoFrames(frame_files, aug, cfg.INPUT.FORMAT, video_id="bench")
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.video_inference({"video_frames": frames, "height": h, "width": w,
                                         "video_id": "bench", "first_frame_masks": first,
                                         "object_ids": [1, 2]})
        t1 = time.perf_counter()
        for frame in out["frames"]:  # as the VPQ and VSS evaluators read them
            frame["panoptic_seg"], frame["sem_seg"]
        for index_map in out["vos_masks"]:  # as the DAVIS evaluator reads them
            index_map.sum()
        t2 = time.perf_counter()
        tubes = out.get("video_instances", [])
        rles = {id(r): len(r["counts"]) for tube in tubes for r in tube["segmentations"]}
        return t1 - t0, t2 - t1, len(tubes), sum(rles.values())

    run(files[:2])  # warm-up: text embeddings, allocator pools
    baseline = _status_kb("VmRSS")
    infer_s, outputs_s, tubes, rle_bytes = run(files)
    return {
        "length": args.length,
        "peak_kb": _status_kb("VmHWM"),
        "increment_kb": _status_kb("VmHWM") - baseline,
        "inference_s_per_frame": infer_s / args.length,
        "outputs_s_per_frame": outputs_s / args.length,
        "tubes": tubes,
        "rle_mib": rle_bytes / 2**20,
        "frame_size": list(VideoFrames(files[:1], aug, cfg.INPUT.FORMAT).size),
    }


def run_lengths(args) -> List[Dict]:
    tmp = tempfile.mkdtemp(prefix="omgseg-bench-video-")
    try:
        frames = os.path.join(tmp, "frames")
        os.makedirs(frames)
        write_video(frames, max(args.lengths), tuple(args.size))
        rows = []
        for n in args.lengths:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--frames", frames,
                   "--tmp", tmp, "--length", str(n), "--threads", str(args.threads),
                   "--config", args.config, "--size", *map(str, args.size), "--opts", *args.opts]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
            if proc.returncode != 0:
                sys.stderr.write(proc.stdout + proc.stderr)
                raise SystemExit(f"the {n}-frame run failed (exit status {proc.returncode})")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            left = os.listdir(os.path.join(tmp, "stores")) if os.path.isdir(
                os.path.join(tmp, "stores")) else []
            if left:
                raise SystemExit(f"the {n}-frame run left mask stores behind: {left}")
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def format_table(rows: Sequence[Dict]) -> str:
    head = ("| frames | peak RSS (MiB) | added by the video (MiB) | of which VIS RLEs (MiB) "
            "| inference s/frame | outputs s/frame |\n|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['length']} | {r['peak_kb'] / 1024:.1f} | "
                     f"{r['increment_kb'] / 1024:.1f} | {r['rle_mib']:.1f} | "
                     f"{r['inference_s_per_frame']:.3f} | "
                     f"{r['outputs_s_per_frame']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[20, 50, 200])
    parser.add_argument("--size", type=int, nargs=2, default=[240, 320], metavar=("H", "W"),
                        help="original frame size (the test resize of the config applies)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--max-ratio", type=float, default=1.1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--frames", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--opts", nargs="*", default=[], help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if min(args.lengths) < 2:
        parser.error("--lengths must be >= 2 (a 2-frame warm-up runs first)")
    rows = run_lengths(args)
    print(f"Streaming video inference, tiny config ({os.path.relpath(args.config, REPO_ROOT)}), "
          f"random weights, {args.size[0]}x{args.size[1]} frames resized to "
          f"{rows[0]['frame_size'][0]}x{rows[0]['frame_size'][1]}, all tasks, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f}\n")
    print(format_table(rows))
    ratio = rows[-1]["peak_kb"] / rows[0]["peak_kb"]
    ok = ratio <= args.max_ratio
    print(f"\npeak RSS at {rows[-1]['length']} frames / at {rows[0]['length']} frames: "
          f"{ratio:.3f} ({'within' if ok else 'ABOVE'} {args.max_ratio})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
