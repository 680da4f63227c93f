"""The whole model on CPU: shapes for T = 1 and T = 2, losses, outputs, checkpoint round trip."""
import copy

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from detectron2.structures import Instances

from omgseg.modeling.meta_arch import OMGSeg, Vocabulary


def _clip(num_frames, h=64, w=80, dataset="omg_shapes_train_panoptic"):
    g = torch.Generator().manual_seed(num_frames)
    frames = []
    for _ in range(num_frames):
        inst = Instances((h, w))
        masks = torch.zeros(2, h, w, dtype=torch.bool)
        masks[0, 5:30, 5:40] = True
        masks[1, 35:60, 30:75] = True
        inst.gt_masks = masks
        inst.gt_classes = torch.tensor([0, 9])
        inst.gt_ids = torch.tensor([1, 2])
        frames.append(inst)
    video = torch.randint(0, 255, (num_frames, 3, h, w), generator=g, dtype=torch.uint8)
    return {"video": video, "instances": frames, "dataset_name": dataset, "height": h, "width": w,
            "task": "panoptic", "file_name": "x"}


@pytest.fixture
def model(tiny_cfg, synthetic_root):
    torch.manual_seed(0)
    return build_model(tiny_cfg)


def test_model_is_registered_and_built(model):
    assert isinstance(model, OMGSeg)
    # The CLIP text tower is not part of the model's parameters or checkpoints.
    assert not any(k.startswith("backbone.") and "transformer.resblocks" in k for k in model.state_dict())


@pytest.mark.parametrize("num_frames", [1, 2])
def test_training_losses_for_t1_and_t2(model, num_frames):
    model.train()
    losses = model([_clip(num_frames), _clip(num_frames)])
    names = {"loss_ce", "loss_mask", "loss_dice", "loss_objectness"}
    assert names <= set(losses)
    # deep supervision: one set per decoder layer (the prediction before layer 1 + 2 more)
    assert {f"{n}_{i}" for n in names for i in range(3)} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for n, p in model.named_parameters() if n.startswith("mask_decoder.layers")]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_inference_outputs_for_image_and_video(model):
    model.eval()
    k = len(Vocabulary.from_metadata(__import__("detectron2.data", fromlist=["MetadataCatalog"])
                                     .MetadataCatalog.get("omg_shapes_train_panoptic")))
    image = {"image": torch.randint(0, 255, (3, 60, 70), dtype=torch.uint8), "height": 120, "width": 140,
             "dataset_name": "omg_shapes_val_panoptic"}
    with torch.no_grad():
        out = model([image])[0]
    assert out["sem_seg"].shape == (k, 120, 140)
    pan, segments = out["panoptic_seg"]
    assert pan.shape == (120, 140)
    assert set(torch.unique(pan).tolist()) <= {0} | {s["id"] for s in segments}
    inst = out["instances"]
    assert inst.image_size == (120, 140) and len(inst) <= 100
    assert inst.pred_masks.shape[1:] == (120, 140)

    clip = {"video": torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8), "height": 64, "width": 64,
            "dataset_name": "omg_shapes_val_panoptic"}
    with torch.no_grad():
        frames = model([clip])[0]["frames"]
    assert len(frames) == 2 and frames[1]["sem_seg"].shape == (k, 64, 64)


def test_vocabulary_switch_at_runtime(model):
    model.eval()
    image = {"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)}
    model.set_vocabulary(Vocabulary(["cat", "dog", "grass, lawn"], [True, True, False]))
    with torch.no_grad():
        out = model([image])[0]
    assert out["sem_seg"].shape[0] == 3
    assert all(s["category_id"] in (0, 1, 2) for s in out["panoptic_seg"][1])


def test_unknown_dataset_vocabulary_is_a_clear_error(model):
    model.eval()
    image = {"image": torch.zeros(3, 32, 32, dtype=torch.uint8), "dataset_name": "no_such_dataset_xyz"}
    with pytest.raises((KeyError, ValueError, AttributeError), match="no_such_dataset_xyz"):
        model([image])


def test_checkpoint_round_trip_gives_identical_outputs(model, tiny_cfg, tmp_path):
    model.eval()
    image = {"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8), "dataset_name": "omg_shapes_val_panoptic"}
    with torch.no_grad():
        ref = model([copy.deepcopy(image)])[0]
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("model_rt")
    torch.manual_seed(123)  # a different random init
    other = build_model(tiny_cfg).eval()
    DetectionCheckpointer(other).load(str(tmp_path / "model_rt.pth"))
    with torch.no_grad():
        out = other([copy.deepcopy(image)])[0]
    torch.testing.assert_close(out["sem_seg"], ref["sem_seg"])
    assert torch.equal(out["panoptic_seg"][0], ref["panoptic_seg"][0])
    torch.testing.assert_close(out["instances"].scores, ref["instances"].scores)
