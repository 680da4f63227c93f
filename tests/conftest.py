"""Shared test set-up: an isolated $DETECTRON2_DATASETS, a tiny synthetic dataset, the real COCO
sample (registered here, from explicit paths) and a tiny config."""
import os
import shutil
import tempfile

# Before anything imports omgseg (which registers datasets under $DETECTRON2_DATASETS).
# Spawned DDP workers import this module again: they must reuse the parent's folder.
_OWNS_DATA_ROOT = not os.environ.get("OMGSEG_TEST_DATASETS")
_DATA_ROOT = (os.environ.get("OMGSEG_TEST_DATASETS")
              or tempfile.mkdtemp(prefix="omgseg-tests-datasets-"))
os.environ["OMGSEG_TEST_DATASETS"] = _DATA_ROOT
os.environ["DETECTRON2_DATASETS"] = _DATA_ROOT
# Gradio's upload cache (read when gradio is imported) goes with the session's folder too.
os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(_DATA_ROOT, "gradio"))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Read-only real COCO photos + panoptic ground truth, kept beside the repository (not part of it).
COCO_SAMPLE = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "coco-panoptic-sample")
COCO_SAMPLE_NAME = "coco_panoptic_sample"


def pytest_sessionfinish(session, exitstatus):
    """The session's dataset folder goes with the session (only the process that made it)."""
    if _OWNS_DATA_ROOT:
        shutil.rmtree(_DATA_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def coco_sample_dir():
    """The real COCO panoptic sample folder; tests that need it skip when it is absent."""
    if not os.path.isfile(os.path.join(COCO_SAMPLE, "panoptic_examples.json")):
        pytest.skip(f"the real COCO panoptic sample is not at {COCO_SAMPLE}")
    return COCO_SAMPLE


@pytest.fixture(scope="session")
def coco_sample(coco_sample_dir):
    """The name of the registered real COCO sample dataset, with its semantic PNGs and instances
    json derived by datasets/prepare_coco_panoptic_sample.py into $DETECTRON2_DATASETS."""
    from prepare_coco_panoptic_sample import prepare_coco_panoptic_sample  # datasets/ (pythonpath)

    from omgseg.data.datasets import register_coco_panoptic_sample

    out_root = os.path.join(_DATA_ROOT, COCO_SAMPLE_NAME)
    prepare_coco_panoptic_sample(coco_sample_dir, out_root)
    register_coco_panoptic_sample(COCO_SAMPLE_NAME, coco_sample_dir, out_root)
    return COCO_SAMPLE_NAME


@pytest.fixture(scope="session")
def synthetic_root():
    """A small OMG-Shapes benchmark at $DETECTRON2_DATASETS/omg_shapes (the registered location)."""
    from omgseg.synthetic import generate_omg_shapes

    root = os.path.join(_DATA_ROOT, "omg_shapes")
    generate_omg_shapes(
        root,
        seed=0,
        num_train_images=24,
        num_val_images=4,
        num_train_videos=2,
        num_val_videos=2,
        image_size=(128, 128),
        video_size=(96, 128),
        min_frames=8,
        max_frames=9,
        progress=False,
    )
    return root


def make_tiny_cfg(output_dir: str, **overrides):
    """The tiny CPU config shrunk further for tests (T = 2 pseudo-videos, 96 px crops), trained
    and tested on the synthetic panoptic images only unless ``overrides`` name other datasets
    (the demo config co-trains every task)."""
    from detectron2.config import get_cfg

    from omgseg import add_omgseg_config

    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(os.path.join(REPO_ROOT, "configs", "omg_tiny_synthetic.yaml"))
    cfg.merge_from_list(
        [
            "MODEL.OMG.CLIP.TEXT_CACHE_DIR", os.path.join(output_dir, "text_cache"),
            "MODEL.OMG.CONVS_DIM", 32, "MODEL.OMG.MASK_DIM", 32, "MODEL.OMG.HIDDEN_DIM", 32,
            "MODEL.OMG.ENC_LAYERS", 1, "MODEL.OMG.ENC_DIM_FEEDFORWARD", 64,
            "MODEL.OMG.DIM_FEEDFORWARD", 64, "MODEL.OMG.NHEADS", 2, "MODEL.OMG.ENC_HEADS", 2,
            "MODEL.OMG.DEC_LAYERS", 3, "MODEL.OMG.NUM_OBJECT_QUERIES", 12,
            "MODEL.OMG.TRAIN_NUM_POINTS", 256,
            "INPUT.LSJ.CROP_SIZE", [96, 96], "INPUT.MIN_SIZE_TEST", 96, "INPUT.MAX_SIZE_TEST", 128,
            "SOLVER.IMS_PER_BATCH", 2, "SOLVER.MAX_ITER", 4, "SOLVER.WARMUP_ITERS", 0,
            "SOLVER.STEPS", (), "SOLVER.CHECKPOINT_PERIOD", 100000,
            "DATALOADER.NUM_WORKERS", 0, "OUTPUT_DIR", output_dir, "SEED", 7, "TEST.EVAL_PERIOD", 0,
            "DATASETS.TRAIN", ("omg_shapes_train_panoptic",),
            "DATASETS.TEST", ("omg_shapes_val_panoptic",),
            "DATASETS.TRAIN_REPEAT_FACTOR", [], "DATALOADER.SAMPLER_TRAIN", "TrainingSampler",
            "MODEL.OMG.PROMPT.POOL_BOX_FEATURES", False,
        ]
    )
    for k, v in overrides.items():
        cfg.merge_from_list([k, v])
    return cfg


def make_predictor_cfg(output_dir, **overrides):
    """The tiny config for predictor tests (no datasets, test resize 64 / 96 px) with
    ``MODEL.WEIGHTS`` saved in ``output_dir`` from a model built with seed 0 (a predictor built
    under another seed matches that model only through the loaded weights)."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    cfg = make_tiny_cfg(str(output_dir), **{"DATASETS.TEST": "()", "DATASETS.TRAIN": "()",
                                            "INPUT.MIN_SIZE_TEST": 64, "INPUT.MAX_SIZE_TEST": 96,
                                            **overrides})
    torch.manual_seed(0)
    DetectionCheckpointer(build_model(cfg), save_dir=str(output_dir)).save("tiny")
    cfg.MODEL.WEIGHTS = os.path.join(str(output_dir), "tiny.pth")
    return cfg


@pytest.fixture
def tiny_cfg(tmp_path):
    return make_tiny_cfg(str(tmp_path))
