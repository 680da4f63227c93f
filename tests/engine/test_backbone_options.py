"""The paper's two backbone options through the trainer: frozen (default: eval mode, no grad, not
in the optimizer, unchanged by a step) or trained at 0.1x the base LR
(configs/omg_convnext_large_trained_backbone.yaml)."""
import os

import pytest
import torch
from detectron2.config import get_cfg

from conftest import REPO_ROOT, make_tiny_cfg
from omgseg import add_omgseg_config
from omgseg.engine import Trainer
from omgseg.solver.build import NORM_MODULE_TYPES

BASE_LR = 1e-3


def _leaf(name):
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(os.path.join(REPO_ROOT, "configs", name))
    return cfg


def _trainer(tmp_path, leaf, max_iter=1, **overrides):
    """The tiny model with the backbone option of ``leaf`` (FREEZE, BACKBONE_MULTIPLIER)."""
    option = _leaf(leaf)
    cfg = make_tiny_cfg(str(tmp_path), **{
        "MODEL.OMG.CLIP.FREEZE": option.MODEL.OMG.CLIP.FREEZE,
        "SOLVER.BACKBONE_MULTIPLIER": option.SOLVER.BACKBONE_MULTIPLIER,
        "SOLVER.BASE_LR": BASE_LR, "SOLVER.MAX_ITER": max_iter, "DATASETS.TEST": (),
        **overrides,
    })
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    return trainer


def _norm_modes(module):
    """Record ``training`` of every normalisation layer each time it runs."""
    seen = []
    for m in module.modules():
        if isinstance(m, NORM_MODULE_TYPES):
            m.register_forward_pre_hook(lambda mod, _: seen.append(mod.training))
    return seen


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_shipped_leaves_select_the_option():
    assert _leaf("omg_convnext_large.yaml").MODEL.OMG.CLIP.FREEZE is True
    trained = _leaf("omg_convnext_large_trained_backbone.yaml")
    assert trained.MODEL.OMG.CLIP.FREEZE is False
    assert trained.SOLVER.BACKBONE_MULTIPLIER == 0.1  # official lr_mult of the trained backbone
    assert trained.MODEL.OMG.CLIP.MODEL_NAME == "convnext_large_d_320"


def test_frozen_backbone(synthetic_root, tmp_path):
    trainer = _trainer(tmp_path, "omg_convnext_large.yaml")
    model = trainer.model
    backbone = {id(p) for p in model.backbone.parameters()}
    in_optimizer = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert backbone and not backbone & in_optimizer
    assert not any(p.requires_grad for p in model.backbone.parameters())
    outputs = []
    model.backbone.register_forward_hook(lambda m, i, out: outputs.append(out))
    norms = _norm_modes(model.backbone)
    before, head_before = _snapshot(model.backbone), _snapshot(model.mask_decoder)
    trainer.train()
    assert norms and not any(norms)  # eval mode while the model trains
    assert model.training and outputs
    assert not any(v.requires_grad for out in outputs for v in out.values())  # under no_grad
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(not torch.equal(v, model.mask_decoder.state_dict()[k])
               for k, v in head_before.items())


def test_trained_backbone_at_a_tenth_of_the_lr(synthetic_root, tmp_path):
    trainer = _trainer(tmp_path, "omg_convnext_large_trained_backbone.yaml", max_iter=4,
                       **{"SOLVER.WARMUP_ITERS": 2, "SOLVER.WARMUP_FACTOR": 0.25,
                          "SOLVER.STEPS": (3,)})
    model = trainer.model
    backbone = {id(p) for p in model.backbone.parameters()}
    groups = trainer.optimizer.param_groups
    bb_groups = [g for g in groups if {id(p) for p in g["params"]} <= backbone]
    head_groups = [g for g in groups if not {id(p) for p in g["params"]} & backbone]
    assert bb_groups and head_groups and len(bb_groups) + len(head_groups) == len(groups)
    assert sum(len(g["params"]) for g in bb_groups) == len(backbone)  # every backbone param
    assert all(g["initial_lr"] == pytest.approx(0.1 * BASE_LR) for g in bb_groups)
    assert all(g["initial_lr"] == pytest.approx(BASE_LR) for g in head_groups)

    lrs = []  # (backbone lr, head lr) of each iteration, after warm-up / step scaling

    def record(original=trainer._trainer.run_step):
        lrs.append((bb_groups[0]["lr"], head_groups[0]["lr"]))
        original()

    trainer._trainer.run_step = record
    norms = _norm_modes(model.backbone)
    before = _snapshot(model.backbone)
    trainer.train()
    assert [bb / head for bb, head in lrs] == pytest.approx([0.1] * 4)
    # warm-up from 0.25x (linear over 2 iterations), then x0.1 at iteration 3
    assert [head / BASE_LR for _, head in lrs] == pytest.approx([0.25, 0.625, 1.0, 0.1])
    assert norms and all(norms)  # the backbone trains: its norms are in train mode
    after = model.backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
