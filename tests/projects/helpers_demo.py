"""Shared set-up of the demo tests: a tiny random-init model saved as a config + checkpoint pair
(what ``--config-file`` / ``MODEL.WEIGHTS`` take), and synthetic pictures and videos."""
import os

import numpy as np
import torch
from PIL import Image

from conftest import REPO_ROOT, make_tiny_cfg

DEMO_DIR = os.path.join(REPO_ROOT, "projects", "OMGSeg")
VOCABULARY = "alpha,beta,gamma"


def write_tiny_model(folder) -> str:
    """A random-init tiny model (seeded) as ``folder/tiny.yaml`` + ``folder/tiny.pth`` (the
    checkpoint is found beside the config). Returns the config path."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    folder = str(folder)
    os.makedirs(folder, exist_ok=True)
    cfg = make_tiny_cfg(folder, **{"DATASETS.TEST": "()", "DATASETS.TRAIN": "()",
                                   "INPUT.MIN_SIZE_TEST": 96, "INPUT.MAX_SIZE_TEST": 128})
    torch.manual_seed(0)
    DetectionCheckpointer(build_model(cfg), save_dir=folder).save("model_final")
    path = os.path.join(folder, "tiny.yaml")
    with open(path, "w") as f:
        f.write(cfg.dump())
    return path


def shapes_image(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """HWC uint8 RGB: a grey background with a red rectangle (rows 20..69, cols 30..89) and a
    blue disc centred at (105, 70), radius 12."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 110, np.uint8) + rng.integers(0, 8, (height, width, 1),
                                                                      dtype=np.uint8)
    image[20:70, 30:90] = (220, 40, 40)
    yy, xx = np.mgrid[:height, :width]
    image[(yy - 70) ** 2 + (xx - 105) ** 2 <= 144] = (40, 60, 210)
    return image


def write_frames(folder, num_frames: int = 4) -> str:
    """A folder of JPEG frames of :func:`shapes_image` with the rectangle moving right."""
    os.makedirs(folder, exist_ok=True)
    for t in range(num_frames):
        image = np.roll(shapes_image(), 3 * t, axis=1)
        Image.fromarray(image).save(os.path.join(folder, f"{t:05d}.jpg"))
    return str(folder)
