"""`python train_net.py ... --eval-only MODEL.WEIGHTS ...` as a user runs it (subprocess)."""
import os
import subprocess
import sys

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from conftest import REPO_ROOT, make_tiny_cfg

TINY_OVERRIDES = [
    "MODEL.OMG.CONVS_DIM", "32", "MODEL.OMG.MASK_DIM", "32", "MODEL.OMG.HIDDEN_DIM", "32",
    "MODEL.OMG.ENC_LAYERS", "1", "MODEL.OMG.ENC_DIM_FEEDFORWARD", "64", "MODEL.OMG.DIM_FEEDFORWARD", "64",
    "MODEL.OMG.NHEADS", "2", "MODEL.OMG.ENC_HEADS", "2", "MODEL.OMG.DEC_LAYERS", "3",
    "MODEL.OMG.NUM_OBJECT_QUERIES", "12", "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128",
    "DATALOADER.NUM_WORKERS", "0",
]


def test_eval_only_loads_weights_and_prints_the_table(synthetic_root, tmp_path):
    cfg = make_tiny_cfg(str(tmp_path))
    torch.manual_seed(0)
    model = build_model(cfg)
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("tiny")
    cmd = [
        sys.executable, os.path.join(REPO_ROOT, "train_net.py"),
        "--config-file", os.path.join(REPO_ROOT, "configs", "omg_tiny_synthetic.yaml"),
        "--eval-only", "MODEL.WEIGHTS", str(tmp_path / "tiny.pth"),
        "OUTPUT_DIR", str(tmp_path / "eval"), "MODEL.OMG.CLIP.TEXT_CACHE_DIR", str(tmp_path / "text_cache"),
        *TINY_OVERRIDES,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    # the results table, with the dataset named and the three task metrics present
    assert "omg_shapes_val_panoptic" in out and "PQ" in out and "mask AP" in out and "mIoU" in out
    # the given checkpoint is what was evaluated
    assert f"Loading from {tmp_path / 'tiny.pth'}" in proc.stderr + out


def test_missing_weights_file_is_a_clear_error(synthetic_root, tmp_path):
    cmd = [
        sys.executable, os.path.join(REPO_ROOT, "train_net.py"),
        "--config-file", os.path.join(REPO_ROOT, "configs", "omg_tiny_synthetic.yaml"),
        "--eval-only", "MODEL.WEIGHTS", str(tmp_path / "nope.pth"), "OUTPUT_DIR", str(tmp_path / "eval"),
        *TINY_OVERRIDES,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode != 0
    assert "nope.pth" in proc.stderr
