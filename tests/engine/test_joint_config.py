"""configs/omg_convnext_large_joint.yaml: the official joint run's data mix, schedule and label
space (136 things + 101 stuff), and its repeat factors reaching the sampler."""
import os

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog

from conftest import REPO_ROOT
from omgseg import add_omgseg_config
from omgseg.data.build import build_train_sampler

JOINT = os.path.join(REPO_ROOT, "configs", "omg_convnext_large_joint.yaml")
REPEATS = {  # official per-epoch repeats
    "coco_2017_train_panoptic_with_sem_seg": 1.0,
    "ytvis_2019_train": 30.0,
    "vipseg_train": 15.0,
    "cityscapes_fine_panoptic_train": 15.0,
    "coco_2017_train_sam": 1.0,
}


def _joint_cfg(*overrides):
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(JOINT)
    cfg.merge_from_list(list(overrides))
    return cfg


def test_joint_config_is_the_official_mix_and_schedule():
    cfg = _joint_cfg()
    assert list(cfg.DATASETS.TRAIN) == list(REPEATS)
    assert all(n in DatasetCatalog.list() for n in list(cfg.DATASETS.TRAIN) + list(
        cfg.DATASETS.TEST))
    assert {n: f for n, f in cfg.DATASETS.TRAIN_REPEAT_FACTOR} == REPEATS
    assert cfg.DATALOADER.SAMPLER_TRAIN == "WeightedTrainingSampler"
    assert cfg.MODEL.OMG.CLIP.MODEL_NAME == "convnext_large_d_320" and cfg.MODEL.OMG.CLIP.FREEZE
    s = cfg.SOLVER
    assert (s.IMS_PER_BATCH, s.BASE_LR, s.WEIGHT_DECAY, s.WARMUP_ITERS) == (32, 1e-4, 0.05, 500)
    epoch = s.MAX_ITER / 12
    assert s.STEPS == (pytest.approx(8 * epoch, abs=1), pytest.approx(11 * epoch, abs=1))
    # one epoch = every repeated sample once, 32 per iteration
    sizes = {"coco_2017_train_panoptic_with_sem_seg": 118287, "ytvis_2019_train": 2238,
             "vipseg_train": 2806, "cityscapes_fine_panoptic_train": 2975,
             "coco_2017_train_sam": 118287}
    assert epoch == pytest.approx(sum(sizes[n] * REPEATS[n] for n in sizes) / 32, rel=1e-3)


def test_repeat_factors_reach_the_sampler():
    cfg = _joint_cfg("SEED", 3)
    records = [{"dataset_name": n, "segments_info": []} for n in REPEATS for _ in range(3)]
    sampler = build_train_sampler(cfg, records)
    factors = sampler._int_part + sampler._frac_part  # RepeatFactorTrainingSampler's factors
    expected = torch.tensor([REPEATS[r["dataset_name"]] for r in records])
    assert torch.equal(factors, expected)


def test_joint_model_builds_with_the_136_plus_101_vocabulary(tmp_path):
    """The ConvNeXt-L config with the tiny random CLIP and narrow head swapped in (no download):
    the model's joint training vocabulary is the official merge of the five sets."""
    cfg = _joint_cfg(
        "MODEL.DEVICE", "cpu", "MODEL.OMG.CLIP.MODEL_NAME", "omg_tiny_convnext",
        "MODEL.OMG.CLIP.PRETRAINED", "", "MODEL.OMG.CLIP.TEXT_CACHE_DIR", str(tmp_path),
        "MODEL.OMG.CONVS_DIM", 32, "MODEL.OMG.MASK_DIM", 32, "MODEL.OMG.HIDDEN_DIM", 32,
        "MODEL.OMG.ENC_LAYERS", 1, "MODEL.OMG.DEC_LAYERS", 1, "MODEL.OMG.NUM_OBJECT_QUERIES", 4,
        "MODEL.OMG.NHEADS", 2, "MODEL.OMG.ENC_HEADS", 2,
    )
    from omgseg.engine import Trainer

    model = Trainer.build_model(cfg)
    joint, id_maps = model.joint_vocabulary()
    things = sum(joint.is_thing)
    assert (things, len(joint) - things) == (136, 101)
    assert list(id_maps) == list(REPEATS) and id_maps["coco_2017_train_sam"] is None
