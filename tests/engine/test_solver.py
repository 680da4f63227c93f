"""Optimizer parameter groups, full-model gradient clipping, LR scheduler."""
import pytest
import torch
from torch import nn

from detectron2.config import get_cfg
from detectron2.layers import FrozenBatchNorm2d

from omgseg.config import add_omgseg_config
from omgseg.solver import build_lr_scheduler, build_optimizer

LR, BB_MULT, WD, WD_NORM, WD_EMBED = 0.1, 0.5, 0.05, 0.001, 0.002


class PosTable(nn.Module):
    def __init__(self):
        super().__init__()
        self.relative_position_bias_table = nn.Parameter(torch.zeros(3, 2))
        self.proj = nn.Linear(2, 2)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), FrozenBatchNorm2d(4))
        self.backbone.add_module("frozen", nn.Linear(2, 2))
        for p in self.backbone.frozen.parameters():
            p.requires_grad_(False)
        self.backbone.add_module("pos", PosTable())
        self.query_feat = nn.Embedding(5, 4)
        self.level_embed = nn.Parameter(torch.zeros(3, 4))
        self.norm = nn.GroupNorm(2, 4)
        self.ln = nn.LayerNorm(4)
        self.head = nn.Linear(4, 3)
        self.head_alias = self.head  # shared module: its params must appear once


EXPECTED = {  # name -> (lr, weight decay)
    "backbone.0.weight": (LR * BB_MULT, WD),
    "backbone.0.bias": (LR * BB_MULT, WD),
    "backbone.1.weight": (LR * BB_MULT, WD_NORM),
    "backbone.1.bias": (LR * BB_MULT, WD_NORM),
    "backbone.pos.relative_position_bias_table": (LR * BB_MULT, WD_EMBED),
    "backbone.pos.proj.weight": (LR * BB_MULT, WD),
    "backbone.pos.proj.bias": (LR * BB_MULT, WD),
    "query_feat.weight": (LR, WD_EMBED),
    "level_embed": (LR, WD_EMBED),
    "norm.weight": (LR, WD_NORM),
    "norm.bias": (LR, WD_NORM),
    "ln.weight": (LR, WD_NORM),
    "ln.bias": (LR, WD_NORM),
    "head.weight": (LR, WD),
    "head.bias": (LR, WD),
}


def make_cfg(**overrides):
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.SOLVER.BASE_LR = LR
    cfg.SOLVER.BACKBONE_MULTIPLIER = BB_MULT
    cfg.SOLVER.WEIGHT_DECAY = WD
    cfg.SOLVER.WEIGHT_DECAY_NORM = WD_NORM
    cfg.SOLVER.WEIGHT_DECAY_EMBED = WD_EMBED
    cfg.SOLVER.MAX_ITER = 10
    cfg.SOLVER.STEPS = (5,)
    cfg.SOLVER.WARMUP_ITERS = 2
    for k, v in overrides.items():
        cfg.merge_from_list([k, v])
    return cfg


def hyperparams_by_name(model, optimizer):
    names = {id(p): n for n, p in model.named_parameters()}  # first name of a shared param
    out = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            name = names[id(p)]
            assert name not in out, f"{name} appears twice"
            out[name] = (group["lr"], group["weight_decay"])
    return out


@pytest.mark.parametrize("opt", ["ADAMW", "SGD"])
def test_param_groups(opt):
    model = Tiny()
    optimizer = build_optimizer(make_cfg(**{"SOLVER.OPTIMIZER": opt}), model)
    assert isinstance(optimizer, torch.optim.AdamW if opt == "ADAMW" else torch.optim.SGD)
    got = hyperparams_by_name(model, optimizer)
    assert set(got) == set(EXPECTED)  # frozen params left out, each param once
    for name, (lr, wd) in EXPECTED.items():
        assert got[name] == pytest.approx((lr, wd)), name
    n_params = sum(len(g["params"]) for g in optimizer.param_groups)
    assert n_params == len(EXPECTED)
    # Groups are merged by hyper-parameters and list their parameter names.
    assert len(optimizer.param_groups) == len(set(EXPECTED.values()))
    assert sorted(n for g in optimizer.param_groups for n in g["param_names"]) == sorted(EXPECTED)


def test_ddp_prefix_and_unknown_optimizer():
    class Wrapper(nn.Module):  # names like DistributedDataParallel's "module.*"
        def __init__(self):
            super().__init__()
            self.module = Tiny()

    wrapper = Wrapper()
    optimizer = build_optimizer(make_cfg(), wrapper)
    got = hyperparams_by_name(wrapper, optimizer)
    assert got["module.backbone.0.weight"] == pytest.approx((LR * BB_MULT, WD))
    assert got["module.query_feat.weight"] == pytest.approx((LR, WD_EMBED))

    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER"):
        build_optimizer(make_cfg(**{"SOLVER.OPTIMIZER": "LAMB"}), Tiny())


def huge_backward(model):
    model.zero_grad()
    loss = sum((p * 1e6).sum() for p in model.parameters() if p.requires_grad)
    loss.backward()


def total_grad_norm(model):
    grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
    return torch.cat(grads).norm().item()


def test_full_model_clipping_sgd_update_magnitude():
    clip = 0.01
    cfg = make_cfg(**{
        "SOLVER.OPTIMIZER": "SGD", "SOLVER.MOMENTUM": 0.0, "SOLVER.WEIGHT_DECAY": 0.0,
        "SOLVER.WEIGHT_DECAY_NORM": 0.0, "SOLVER.WEIGHT_DECAY_EMBED": 0.0,
        "SOLVER.BASE_LR": 1.0, "SOLVER.BACKBONE_MULTIPLIER": 1.0,
        "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": clip,
    })
    model = Tiny()
    optimizer = build_optimizer(cfg, model)
    assert "FullModelGradientClipping" in type(optimizer).__name__
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    huge_backward(model)
    assert total_grad_norm(model) > 1e5
    optimizer.step()
    assert total_grad_norm(model) == pytest.approx(clip, rel=1e-4)
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    update = torch.cat([(a - b).flatten() for a, b in zip(after, before)]).norm().item()
    assert update == pytest.approx(clip, rel=1e-3)  # lr 1: the update is the clipped gradient


def test_full_model_clipping_adamw_sees_clipped_grads(monkeypatch):
    seen = []
    original_step = torch.optim.AdamW.step

    def recording_step(self, closure=None):  # the base optimizer's step, after clipping
        seen.append(
            torch.cat([p.grad.flatten() for g in self.param_groups for p in g["params"]]).norm()
        )
        return original_step(self, closure)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    model = Tiny()
    optimizer = build_optimizer(make_cfg(), model)  # defaults: ADAMW, full_model, 0.01
    huge_backward(model)
    optimizer.step()
    assert len(seen) == 1 and seen[0].item() == pytest.approx(0.01, rel=1e-4)


def test_other_clip_types_and_disabled():
    model = Tiny()
    plain = build_optimizer(make_cfg(**{"SOLVER.CLIP_GRADIENTS.ENABLED": False}), model)
    assert type(plain) is torch.optim.AdamW

    value_cfg = make_cfg(**{"SOLVER.CLIP_GRADIENTS.CLIP_TYPE": "value",
                            "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": 0.5})
    optimizer = build_optimizer(value_cfg, model)
    assert "FullModel" not in type(optimizer).__name__
    assert isinstance(optimizer, torch.optim.AdamW)
    huge_backward(model)
    optimizer.step()  # Detectron2's per-parameter clipper: every value clipped to 0.5
    assert max(p.grad.abs().max().item() for p in model.parameters() if p.grad is not None) <= 0.5


def test_lr_scheduler():
    model = Tiny()
    cfg = make_cfg()
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    lrs = []
    for _ in range(cfg.SOLVER.MAX_ITER):
        lrs.append(optimizer.param_groups[0]["lr"] / optimizer.param_groups[0]["initial_lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] < 0.01  # warmup (factor 0.001)
    assert lrs[3] == pytest.approx(1.0) and lrs[7] == pytest.approx(0.1)
