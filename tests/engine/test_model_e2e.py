"""The whole model on CPU: shapes for T = 1 and T = 2, losses and the gradients they reach, the
joint training vocabulary, outputs, vocabulary switches, checkpoint round trip."""
import copy

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from detectron2.structures import Instances

from omgseg.modeling.meta_arch import OMGSeg, Vocabulary
from omgseg.modeling.vocabulary import dataset_vocabulary

# Parameters the image / video task legitimately leaves without a gradient: the location-query
# (prompt) embeddings, and the frozen-CLIP visual head used only by open-vocabulary fusion at
# inference (the tiny config trains the visual tower).
PROMPT_ONLY = (
    "mask_decoder.pb_embedding.", "mask_decoder.mask_tokens.", "mask_decoder.pos_linear."
)
INFERENCE_ONLY = ("backbone.visual.head.", "backbone.visual.trunk.head.")


def _clip(num_frames, h=64, w=80, dataset="omg_shapes_train_panoptic", classes=(0, 9)):
    g = torch.Generator().manual_seed(num_frames)
    frames = []
    for _ in range(num_frames):
        inst = Instances((h, w))
        masks = torch.zeros(2, h, w, dtype=torch.bool)
        masks[0, 5:30, 5:40] = True
        masks[1, 35:60, 30:75] = True
        inst.gt_masks = masks
        inst.gt_classes = torch.tensor(classes)
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
    keys = model.state_dict()
    assert not any(k.startswith("backbone.") and "transformer.resblocks" in k for k in keys)


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
    # sampling offsets and attention weights of the deformable layers start at 0 (Deformable
    # DETR init), which cuts the query-position path (level_encoding) at step 0 only
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith(("sampling_offsets.weight", "attention_weights.weight")):
                p.normal_(0.0, 0.01)
    model.zero_grad()
    sum(model([_clip(num_frames), _clip(num_frames)]).values()).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    heads = [n for n in trainable if n.startswith(("mask_decoder.", "pixel_decoder."))]
    assert len(heads) > 50
    silent = [n for n in heads if trainable[n].grad is None or not trainable[n].grad.any()]
    assert sorted(silent) == sorted(n for n in heads if n.startswith(PROMPT_ONLY)), silent
    for n, p in trainable.items():
        if n.startswith(PROMPT_ONLY + INFERENCE_ONLY):
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.any(), n


def test_training_uses_the_joint_vocabulary_and_extends_it(model, monkeypatch):
    """Labels go to the joint vocabulary of DATASETS.TRAIN; a dataset outside it joins (cached)."""
    name = "test_e2e_extra_dataset"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: [])
        MetadataCatalog.get(name).set(thing_classes=["zebra", "circle, disc", "kite"])
    seen = {}
    criterion_forward = model.criterion.forward

    def record(outputs, targets):
        seen["labels"] = [t["labels"].tolist() for t in targets]
        seen["num_classes"] = outputs["pred_logits"].shape[-1] - 1
        return criterion_forward(outputs, targets)

    monkeypatch.setattr(model.criterion, "forward", record)
    model.train()
    shapes = dataset_vocabulary("omg_shapes_train_panoptic")
    joint, maps = model.joint_vocabulary()
    assert len(joint) == len(shapes) == 12 and maps["omg_shapes_train_panoptic"].tolist() == list(
        range(12))
    model([_clip(1), _clip(1, dataset=name, classes=(0, 1))])
    joint, maps = model.joint_vocabulary()
    # "zebra" and "kite" are new things (after the 8 shapes), "circle, disc" joins "circle"
    assert seen["num_classes"] == len(joint) == 14 and joint.names[8:10] == ("zebra", "kite")
    assert maps[name].tolist() == [8, 0, 9]
    assert maps["omg_shapes_train_panoptic"].tolist() == list(range(8)) + list(range(10, 14))
    assert seen["labels"] == [[0, 11], [8, 0]]
    assert model.joint_vocabulary() is model.joint_vocabulary()  # cached


def test_class_agnostic_training_samples_get_no_class(model, monkeypatch):
    name = "test_e2e_class_agnostic"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: [])
        MetadataCatalog.get(name).set(thing_classes=["object"], class_agnostic=True)
    seen = {}
    criterion_forward = model.criterion.forward

    def record(outputs, targets):
        seen["labels"] = [t["labels"].tolist() for t in targets]
        return criterion_forward(outputs, targets)

    monkeypatch.setattr(model.criterion, "forward", record)
    model.train()
    losses = model([_clip(1), _clip(1, dataset=name, classes=(0, 0))])
    assert seen["labels"] == [[0, 9], [-1, -1]]
    assert torch.isfinite(sum(losses.values()))


def test_inference_outputs_for_image_and_video(model):
    model.eval()
    k = len(Vocabulary.from_metadata(MetadataCatalog.get("omg_shapes_val_panoptic")))
    image = {"image": torch.randint(0, 255, (3, 60, 70), dtype=torch.uint8), "height": 120,
             "width": 140, "dataset_name": "omg_shapes_val_panoptic"}
    with torch.no_grad():
        out = model([image])[0]
    assert out["sem_seg"].shape == (k, 120, 140)
    pan, segments = out["panoptic_seg"]
    assert pan.shape == (120, 140)
    assert set(torch.unique(pan).tolist()) <= {0} | {s["id"] for s in segments}
    inst = out["instances"]
    assert inst.image_size == (120, 140) and len(inst) <= 100
    assert inst.pred_masks.shape[1:] == (120, 140)

    clip = {"video": torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8), "height": 64,
            "width": 64, "dataset_name": "omg_shapes_val_panoptic"}
    with torch.no_grad():
        frames = model([clip])[0]["frames"]
    assert len(frames) == 2 and frames[1]["sem_seg"].shape == (k, 64, 64)


def test_vocabulary_switch_at_runtime(model, monkeypatch):
    model.eval()
    modules = {n: id(m) for n, m in model.named_modules()}
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    encode = model.backbone.encode_text
    prompts = []

    def counting_encode(tokens):
        prompts.append(tokens.shape[0])
        return encode(tokens)

    monkeypatch.setattr(model.backbone, "encode_text", counting_encode)
    image = {"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)}
    pets = Vocabulary(["cat", "dog", "grass, lawn"], [True, True, False])
    model.set_vocabulary(pets)
    with torch.no_grad():
        out = model([image])[0]
    assert out["sem_seg"].shape[0] == 3
    assert all(s["category_id"] in (0, 1, 2) for s in out["panoptic_seg"][1])
    assert sum(prompts) == 4 * 14  # 4 synonyms x 14 templates, encoded once
    model.set_vocabulary(Vocabulary(["car"]))
    with torch.no_grad():
        assert model([image])[0]["sem_seg"].shape[0] == 1
    model.set_vocabulary(pets)
    with torch.no_grad():
        model([image])
    assert sum(prompts) == 5 * 14  # "car" only: the pets came from the text cache
    # nothing else was rebuilt or changed
    assert {n: id(m) for n, m in model.named_modules()} == modules
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_unknown_dataset_vocabulary_is_a_clear_error(model):
    model.eval()
    image = {"image": torch.zeros(3, 32, 32, dtype=torch.uint8),
             "dataset_name": "no_such_dataset_xyz"}
    with pytest.raises((KeyError, ValueError, AttributeError), match="no_such_dataset_xyz"):
        model([image])


def test_checkpoint_round_trip_gives_identical_outputs(model, tiny_cfg, tmp_path):
    model.eval()
    image = {"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8),
             "dataset_name": "omg_shapes_val_panoptic"}
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
