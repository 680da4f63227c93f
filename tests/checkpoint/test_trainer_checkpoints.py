"""The trainer's checkpoints: atomic periodic saves, --resume past a corrupt last checkpoint."""
import os

import pytest

from conftest import make_tiny_cfg
from omgseg.checkpoint import OMGSegCheckpointer
from omgseg.engine import ConfigError, Trainer


def test_resume_skips_a_corrupt_final_checkpoint(synthetic_root, tmp_path):
    cfg = make_tiny_cfg(str(tmp_path), **{"SOLVER.MAX_ITER": 2, "SOLVER.CHECKPOINT_PERIOD": 1})
    first = Trainer(cfg)
    assert isinstance(first.checkpointer, OMGSegCheckpointer)
    first.resume_or_load(resume=False)
    first.train()
    names = sorted(os.listdir(tmp_path))
    assert {"model_0000000.pth", "model_0000001.pth", "model_final.pth"} <= set(names)
    assert not [n for n in names if n.startswith(".tmp-")]
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"

    final = tmp_path / "model_final.pth"
    final.write_bytes(final.read_bytes()[:4096])  # e.g. a disk that filled up
    second = Trainer(make_tiny_cfg(str(tmp_path), **{"SOLVER.MAX_ITER": 3}))
    second.resume_or_load(resume=True)
    assert second.start_iter == 2  # model_0000001.pth, the newest readable one, holds iteration 1


def test_trainer_refuses_a_config_that_cannot_work(synthetic_root, tmp_path):
    with pytest.raises(ConfigError, match="did you mean omg_shapes_train_panoptic"):
        Trainer(make_tiny_cfg(str(tmp_path), **{"DATASETS.TRAIN": ("omg_shapes_train_panoptc",)}))
    not_a_folder = tmp_path / "out.txt"
    not_a_folder.write_text("mine")
    with pytest.raises(ConfigError, match="is an existing file"):
        Trainer(make_tiny_cfg(str(not_a_folder)))
    assert not_a_folder.read_text() == "mine"
