"""README "Train on your own data", followed literally: a COCO instances dataset and a COCO
panoptic dataset are registered in a user script (the README's ``train_my_data.py``), trained a
few iterations and evaluated with ``train_net.py``'s flags, as subprocesses. Complements
tests/engine/test_custom_dataset.py (register_coco_instances through the Trainer, in-process)."""
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT

README = os.path.join(REPO_ROOT, "README.md")
# (COCO id, name, isthing, colour): non-contiguous ids, as real datasets have.
CATEGORIES = [(3, "cell", 1, (220, 40, 40)), (7, "nucleus", 1, (40, 60, 210)),
              (11, "background tissue", 0, (90, 150, 90))]
TINY = [
    "MODEL.OMG.CONVS_DIM", "32", "MODEL.OMG.MASK_DIM", "32", "MODEL.OMG.HIDDEN_DIM", "32",
    "MODEL.OMG.ENC_LAYERS", "1", "MODEL.OMG.ENC_DIM_FEEDFORWARD", "64",
    "MODEL.OMG.DIM_FEEDFORWARD", "64", "MODEL.OMG.NHEADS", "2", "MODEL.OMG.ENC_HEADS", "2",
    "MODEL.OMG.DEC_LAYERS", "3", "MODEL.OMG.NUM_OBJECT_QUERIES", "12",
    "MODEL.OMG.TRAIN_NUM_POINTS", "256", "INPUT.LSJ.CROP_SIZE", "(96, 96)",
    "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128", "SOLVER.IMS_PER_BATCH", "2",
    "SOLVER.MAX_ITER", "3", "SOLVER.WARMUP_ITERS", "0", "SOLVER.STEPS", "()",
    "SOLVER.CHECKPOINT_PERIOD", "100000", "DATALOADER.NUM_WORKERS", "0", "TEST.EVAL_PERIOD", "0",
    "DATASETS.TRAIN_REPEAT_FACTOR", "[]", "DATALOADER.SAMPLER_TRAIN", "TrainingSampler",
    "MODEL.OMG.PROMPT.POOL_BOX_FEATURES", "False",
]


def write_coco_dataset(root, num_images: int = 4, size: int = 64) -> None:
    """images/, instances.json, panoptic.json + panoptic/ PNGs: two things and one stuff."""
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "panoptic"))
    images, anns, pan_anns = [], [], []
    for i in range(num_images):
        canvas = np.zeros((size, size, 3), np.uint8)
        canvas[:] = CATEGORIES[2][3]
        pan = np.zeros((size, size, 3), np.uint8)
        pan[:] = (1, 0, 0)  # segment id 1: the stuff
        segments = [{"id": 1, "category_id": 11, "iscrowd": 0, "area": 0, "bbox": [0, 0, 0, 0]}]
        for k, (cat, _, _, colour) in enumerate(CATEGORIES[:2]):
            x0, y0 = int(rng.integers(2, 12)) + 30 * k, int(rng.integers(2, 30))
            w, h = int(rng.integers(12, 20)), int(rng.integers(12, 24))
            canvas[y0:y0 + h, x0:x0 + w] = colour
            pan[y0:y0 + h, x0:x0 + w] = (k + 2, 0, 0)
            poly = [x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cat,
                         "segmentation": [[float(v) for v in poly]], "area": float(w * h),
                         "bbox": [x0, y0, w, h], "iscrowd": 0})
            segments.append({"id": k + 2, "category_id": cat, "iscrowd": 0, "area": w * h,
                             "bbox": [x0, y0, w, h]})
        segments[0]["area"] = int((pan[..., 0] == 1).sum())
        segments[0]["bbox"] = [0, 0, size, size]
        Image.fromarray(canvas).save(os.path.join(root, "images", f"{i:04d}.jpg"), quality=95)
        Image.fromarray(pan).save(os.path.join(root, "panoptic", f"{i:04d}.png"))
        images.append({"id": i + 1, "file_name": f"{i:04d}.jpg", "height": size, "width": size})
        pan_anns.append({"image_id": i + 1, "file_name": f"{i:04d}.png",
                         "segments_info": segments})
    cats = [{"id": c, "name": n, "isthing": t, "color": list(col)}
            for c, n, t, col in CATEGORIES]
    with open(os.path.join(root, "instances.json"), "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats[:2]}, f)
    with open(os.path.join(root, "panoptic.json"), "w") as f:
        json.dump({"images": images, "annotations": pan_anns, "categories": cats}, f)


def readme_block(name: str) -> str:
    """The fenced code block of the README section that starts with ``# <name>``."""
    text = open(README).read()
    section = text[text.index("<!-- custom-data:begin"):text.index("<!-- custom-data:end")]
    for block in re.findall(r"```(?:python|bash)\n(.*?)```", section, re.S):
        if block.startswith(f"# {name}"):
            return block
    raise AssertionError(f"README custom-data section has no block starting with '# {name}'")


@pytest.mark.parametrize("kind", ["instances", "panoptic"])
def test_readme_custom_data_trains_and_evaluates(kind, tmp_path):
    data = tmp_path / "my_data"
    write_coco_dataset(str(data))
    script = tmp_path / "train_my_data.py"
    script.write_text(readme_block(f"train_my_data.py ({kind})")
                      .replace('"train_net.py"', repr(os.path.join(REPO_ROOT, "train_net.py"))))
    command = readme_block(f"train ({kind})")
    # the README's flags, with the tiny model of the tests instead of ConvNeXt-L
    line = " ".join(x for x in command.splitlines() if x.strip() and not x.startswith("#"))
    args = shlex.split(line)
    assert args[:2] == ["python", "train_my_data.py"], line
    args = args[2:]
    config = args.index("--config-file")
    args[config + 1] = os.path.join(REPO_ROOT, "configs", "omg_tiny_synthetic.yaml")
    out = tmp_path / "out"
    args = [a for a in args if a not in ("--num-gpus", "8")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(script), *args, "OUTPUT_DIR", str(out),
         "MODEL.OMG.CLIP.TEXT_CACHE_DIR", str(tmp_path / "text_cache"), *TINY],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (out / "model_final.pth").is_file()
    final = (out / "log.txt").read_text()
    if kind == "panoptic":
        assert "PQ" in proc.stdout + final, (proc.stdout + final)[-3000:]
    else:
        assert "AP" in proc.stdout + final, (proc.stdout + final)[-3000:]
