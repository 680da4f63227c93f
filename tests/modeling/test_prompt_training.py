"""Prompt (COCO-SAM mode) samples in training: grouping with image / video samples, losses,
normalisation over the whole batch, gradients of the location-query parameters."""
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Instances

from conftest import make_tiny_cfg
from omgseg.data.prompts import PROMPT_KINDS, sample_training_prompts
from omgseg.modeling.meta_arch import training_groups

H, W = 64, 64


@pytest.fixture(scope="module")
def model(tmp_path_factory, synthetic_root):
    cfg = make_tiny_cfg(str(tmp_path_factory.mktemp("train")))
    torch.manual_seed(0)
    return build_model(cfg).train()


def _masks():
    m = np.zeros((3, H, W), bool)
    m[0, 5:30, 5:30] = True
    m[1, 35:60, 30:60] = True
    m[2] = ~(m[0] | m[1])
    return m


def _prompt_sample(kinds, seed=0, num=6):
    masks = _masks()
    prompts, idx = sample_training_prompts(masks, num, kinds, np.random.default_rng(seed))
    inst = Instances((H, W))
    inst.gt_masks = torch.from_numpy(masks[idx])
    inst.gt_classes = torch.full((len(idx),), -1, dtype=torch.long)
    inst.gt_ids = torch.from_numpy(idx)
    return {"video": torch.randint(0, 255, (1, 3, H, W), dtype=torch.uint8),
            "instances": [inst], "prompts": prompts, "task": "prompt",
            "dataset_name": "omg_shapes_train_prompt"}


def _image_sample(t=2):
    masks = torch.from_numpy(_masks()[:2])
    inst = Instances((H, W))
    inst.gt_masks = masks
    inst.gt_classes = torch.tensor([0, 1])
    inst.gt_ids = torch.tensor([0, 1])
    return {"video": torch.randint(0, 255, (t, 3, H, W), dtype=torch.uint8),
            "instances": [inst] * t, "task": "panoptic",
            "dataset_name": "omg_shapes_train_panoptic"}


def test_training_groups():
    inputs = [{"task": "prompt"}, {"task": "panoptic"}, {"task": "prompt"}, {"task": "vos"}]
    assert training_groups(inputs, [1, 2, 1, 2]) == [(True, 1, [0, 2]), (False, 2, [1, 3])]
    assert training_groups(inputs, [1, 2, 1, 3]) == [(True, 1, [0, 2]), (False, 2, [1]),
                                                     (False, 3, [3])]


def test_mixed_batch_trains_every_location_query_parameter(model):
    model.zero_grad()
    batch = [_prompt_sample({"point": 1.0}), _image_sample(),
             _prompt_sample({k: 1.0 for k in PROMPT_KINDS if k != "point"}, seed=1)]
    losses = model(batch)
    image_only = model([_image_sample()])
    assert set(losses) == set(image_only)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    dec = model.mask_decoder
    pb = dec.pb_embedding.weight.grad
    assert pb[0].abs().sum() > 0 and pb[1].abs().sum() > 0  # box AND point rows
    for p in (dec.mask_tokens.weight, dec.pos_linear.weight, dec.mask_pooling_proj[1].weight,
              dec.query_feat.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_prompt_only_batch_has_no_class_or_objectness_loss(model):
    model.zero_grad()
    losses = model([_prompt_sample({"point": 0.5, "box": 0.5})])
    for k, v in losses.items():
        if k.startswith(("loss_ce", "loss_objectness")):
            assert float(v) == 0.0, k
        else:
            assert float(v) > 0, k
    sum(losses.values()).backward()
    assert model.mask_decoder.query_feat.weight.grad is None or \
        model.mask_decoder.query_feat.weight.grad.abs().sum() == 0


def test_group_losses_use_the_whole_batch_normalisers(model):
    """loss_ce of [image, image'] decoded in two groups (T = 2 and T = 1) with the batch's
    normalisers equals the sum of the per-group sums over the batch's class weight."""
    crit = model.criterion
    q, k = 12, 5
    torch.manual_seed(0)
    outs = [{"pred_logits": torch.randn(1, q, k + 1), "pred_masks": torch.randn(1, q, t, 8, 8),
             "pred_objectness": torch.randn(1, q, 1)} for t in (2, 1)]
    tgts = [[{"labels": torch.tensor([0, 3]), "masks": torch.rand(2, 2, 8, 8) > 0.5}],
            [{"labels": torch.tensor([1]), "masks": torch.rand(1, 1, 8, 8) > 0.5}],
            [{"labels": torch.tensor([2, 2, 2]), "masks": torch.rand(3, 1, 8, 8) > 0.5,
              "match": False}]]
    sums = [crit.normaliser_sums(tgts[0], q), crit.normaliser_sums(tgts[1] + tgts[2], q)]
    # by hand: num_masks 2 + 1 + 3; class weight (2 + 0.1 * 10) + (1 + 0.1 * 11) + 0 (prompt)
    assert sums[0][0] + sums[1][0] == 6
    assert abs(sums[0][1] + sums[1][1] - (3.0 + 2.1)) < 1e-9
    norms = crit.reduce_normalisers([a + b for a, b in zip(*sums)], "cpu")
    torch.manual_seed(1)  # the same matching points in both calls
    group_a = crit(outs[0], tgts[0], norms)["loss_ce"]
    torch.manual_seed(1)
    alone_a = crit(outs[0], tgts[0])["loss_ce"]
    torch.testing.assert_close(group_a * norms.cls_avg_factor, alone_a * 3.0)


@pytest.mark.parametrize("train", [("omg_shapes_train_prompt", "omg_shapes_train_panoptic"),
                                   ("omg_shapes_train_prompt",)])
def test_trainer_runs_prompt_datasets_alone_and_mixed(synthetic_root, tmp_path, train):
    """The Trainer's loader (multi-task mapper: COCO-SAM-type records -> prompt samples), the
    grouped forward and the prompt evaluation; a class-agnostic dataset alone trains too."""
    from omgseg.engine import Trainer

    cfg = make_tiny_cfg(str(tmp_path), **{
        "SOLVER.MAX_ITER": 3, "SOLVER.IMS_PER_BATCH": 4, "DATASETS.TRAIN": str(train),
        "DATASETS.TEST": "('omg_shapes_val_prompt',)", "INPUT.PROMPT.MIN_SCALE": 0.8})
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert len(trainer.storage.history("loss_dice").values()) == 3
    res = Trainer.test(cfg, trainer.model)["prompt"]
    assert set(res) == {"mIoU_point", "mIoU_box", "mIoU_scribble", "num_segments"}
