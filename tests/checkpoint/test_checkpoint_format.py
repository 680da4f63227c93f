"""Checkpoint format version, training vocabulary, migration of older files, refusal of newer
ones and of Mask2Former checkpoints."""
import pytest
import torch
from torch import nn

from conftest import make_tiny_cfg
from official_tsv import official_state_dict
from omgseg.checkpoint import (
    FORMAT_VERSION,
    CheckpointMismatchError,
    CheckpointVersionError,
    OMGSegCheckpointer,
    checkpoint_training_vocabulary,
    convert_official_checkpoint,
)
from omgseg.modeling.vocabulary import Vocabulary
from test_checkpointer import captured_log

BIASES = [f"pixel_decoder.input_convs.{i}.conv.bias" for i in range(3)]


class _ConvNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.gn = nn.GroupNorm(2, 4)


class HeadToy(nn.Module):
    """The names of OMGSeg's pixel decoder input projections, and a joint vocabulary."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 3)
        self.pixel_decoder = nn.Module()
        self.pixel_decoder.input_convs = nn.ModuleList([_ConvNorm() for _ in range(3)])
        self.mask_decoder = nn.Linear(3, 2)

    def joint_vocabulary(self):
        vocab = Vocabulary(["cat", "dog, puppy", "sky"], [True, True, False])
        return vocab, {"pets_train": torch.tensor([0, 1]), "sky_train": torch.tensor([2]),
                       "": None}


def _filled(model, value=1.0):
    return {k: torch.full_like(v, value) for k, v in model.state_dict().items()}


def test_saves_hold_the_version_and_the_training_vocabulary(tmp_path):
    OMGSegCheckpointer(HeadToy(), str(tmp_path)).save("model_0000001", iteration=1)
    path = str(tmp_path / "model_0000001.pth")
    raw = torch.load(path, weights_only=True)
    assert raw["omgseg_format_version"] == FORMAT_VERSION == 1
    vocab = checkpoint_training_vocabulary(path)
    assert vocab == {"names": ["cat", "dog, puppy", "sky"], "is_thing": [True, True, False],
                     "datasets": ["pets_train", "sky_train"]}
    with captured_log() as log:
        OMGSegCheckpointer(HeadToy()).load(path)
    line = next(m for m in log if "was trained on" in m)
    assert "3 classes (2 things, 1 stuff) from pets_train, sky_train: cat, dog, sky" in line


def test_trainer_checkpoints_hold_the_models_joint_vocabulary(synthetic_root, tmp_path):
    from omgseg.engine import Trainer

    cfg = make_tiny_cfg(str(tmp_path), **{"SOLVER.MAX_ITER": 1, "DATASETS.TEST": ()})
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    joint, _ = trainer.model.joint_vocabulary()
    vocab = checkpoint_training_vocabulary(str(tmp_path / "model_final.pth"))
    assert vocab["names"] == list(joint.names) and vocab["is_thing"] == list(joint.is_thing)
    assert vocab["datasets"] == ["omg_shapes_train_panoptic"]


def test_an_unversioned_file_without_the_input_projection_biases_is_migrated(tmp_path):
    state = {k: v for k, v in _filled(HeadToy()).items() if k not in BIASES}
    torch.save({"model": state}, tmp_path / "old.pth")
    model = HeadToy()
    with captured_log() as log:
        OMGSegCheckpointer(model).load(str(tmp_path / "old.pth"))
    migrated = [m for m in log if "migrated" in m]
    assert len(migrated) == 1 and "has no format version" in migrated[0]
    assert "added zero pixel_decoder.input_convs.{0,1,2}.conv.bias" in migrated[0]
    for i in range(3):
        conv = model.pixel_decoder.input_convs[i].conv
        assert torch.equal(conv.bias, torch.zeros(4)) and torch.equal(conv.weight,
                                                                      torch.ones(4, 3, 1, 1))
    # same outputs as the bias-free conv of the old model
    x = torch.randn(1, 3, 2, 2)
    old = nn.Conv2d(3, 4, 1, bias=False)
    old.weight.data.fill_(1.0)
    assert torch.equal(model.pixel_decoder.input_convs[0].conv(x), old(x))


def test_an_unversioned_file_that_fits_loads_without_migration(tmp_path):
    torch.save({"model": _filled(HeadToy(), 2.0)}, tmp_path / "old.pth")
    model = HeadToy()
    with captured_log() as log:
        OMGSegCheckpointer(model).load(str(tmp_path / "old.pth"))
    assert not [m for m in log if "migrated" in m]
    assert torch.equal(model.mask_decoder.bias, torch.full((2,), 2.0))


@pytest.mark.parametrize("case", ["versioned", "two_of_three", "another_tensor_too"])
def test_only_the_known_gap_of_unversioned_files_is_filled(tmp_path, case):
    state = {k: v for k, v in _filled(HeadToy()).items() if k not in BIASES}
    extra = {}
    if case == "versioned":
        extra = {"omgseg_format_version": 1}  # a version-1 file must be complete
    elif case == "two_of_three":
        state[BIASES[0]] = torch.ones(4)
    else:
        del state["mask_decoder.bias"]
    torch.save({"model": state, **extra}, tmp_path / "w.pth")
    with pytest.raises(CheckpointMismatchError, match="missing from the checkpoint"):
        OMGSegCheckpointer(HeadToy()).load(str(tmp_path / "w.pth"))


def test_a_newer_format_is_refused(tmp_path):
    torch.save({"model": _filled(HeadToy()), "omgseg_format_version": FORMAT_VERSION + 1},
               tmp_path / "new.pth")
    model = HeadToy()
    before = model.mask_decoder.weight.clone()
    with pytest.raises(CheckpointVersionError, match=r"new\.pth has checkpoint format version 2, "
                       r"newer than the 1 this code reads.*Update this repository"):
        OMGSegCheckpointer(model).load(str(tmp_path / "new.pth"))
    assert torch.equal(model.mask_decoder.weight, before)
    with pytest.raises(CheckpointVersionError, match="newer"):
        checkpoint_training_vocabulary(str(tmp_path / "new.pth"))


def _mask2former_state():
    """Detectron2 Mask2Former names (maskformer2: MSDeformAttnPixelDecoder +
    MultiScaleMaskedTransformerDecoder) with COCO panoptic shapes, one tensor per module."""
    return {
        "backbone.res2.0.conv1.weight": torch.zeros(64, 64, 1, 1),
        "sem_seg_head.pixel_decoder.input_proj.0.0.weight": torch.zeros(256, 2048, 1, 1),
        "sem_seg_head.pixel_decoder.input_proj.0.0.bias": torch.zeros(256),
        "sem_seg_head.pixel_decoder.transformer.level_embed": torch.zeros(3, 256),
        "sem_seg_head.pixel_decoder.mask_features.weight": torch.zeros(256, 256, 1, 1),
        "sem_seg_head.predictor.query_feat.weight": torch.zeros(100, 256),
        "sem_seg_head.predictor.class_embed.weight": torch.zeros(134, 256),
        "sem_seg_head.predictor.mask_embed.layers.0.weight": torch.zeros(256, 256),
    }


@pytest.mark.parametrize("allow_partial", [False, True])
def test_a_mask2former_checkpoint_is_refused_with_what_it_is(tmp_path, allow_partial):
    torch.save({"model": _mask2former_state()}, tmp_path / "m2f.pth")
    with pytest.raises(CheckpointMismatchError) as info:
        OMGSegCheckpointer(HeadToy(), allow_partial=allow_partial).load(str(tmp_path / "m2f.pth"))
    msg = str(info.value)
    assert "m2f.pth is a Detectron2 Mask2Former checkpoint" in msg
    assert "100 queries of width 256" in msg and "closed-set classifier over 133 classes" in msg
    assert "not an OMG-Seg checkpoint" in msg and "convert_omgseg_official.py" in msg


def test_converted_official_heads_carry_the_version_and_no_vocabulary(tmp_path):
    torch.save(official_state_dict(), tmp_path / "omg_seg_convl.pth")
    convert_official_checkpoint(str(tmp_path / "omg_seg_convl.pth"), str(tmp_path / "out.pth"))
    raw = torch.load(tmp_path / "out.pth", weights_only=True)
    assert raw["omgseg_format_version"] == FORMAT_VERSION
    assert checkpoint_training_vocabulary(str(tmp_path / "out.pth")) is None
