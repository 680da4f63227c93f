"""Prompts from ground truth (omgseg/data/prompts.py) and the prompt mappers."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from detectron2.data import MetadataCatalog
from detectron2.data import transforms as T

from omgseg.data.build import MAPPERS, TEST_MAPPERS
from omgseg.data.dataset_mappers import (
    MultiTaskDatasetMapper,
    PromptDatasetMapper,
    PromptTestDatasetMapper,
    record_kind,
)
from omgseg.data.dataset_mappers.multi_task_mapper import MAPPERS_BY_RECORD_KIND
from omgseg.data.prompts import (
    PROMPT_KINDS,
    Prompts,
    center_point,
    center_scribble,
    evaluation_prompts,
    jitter_mask,
    mask_box,
    point_box,
    random_point,
    random_polygon,
    random_scribble,
    rasterize_polygon,
    rasterize_scribble,
    repeat_to,
    sample_training_prompts,
)

ALL = {k: 1.0 for k in PROMPT_KINDS}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


# ----------------------------------------------------------------------------- points / boxes
def test_center_point_is_the_distance_transform_argmax():
    # 5 x 9 rectangle at rows 2..6, cols 3..11: interior distance peaks on the middle row; the
    # middle row has distances 1,2,3,3,3,3,3,2,1 -> first maximum in raster order is col 5.
    m = _rect(12, 16, 2, 7, 3, 12)
    assert center_point(m) == (5, 4)
    # a square: its centre
    assert center_point(_rect(9, 9, 2, 7, 2, 7)) == (4, 4)


def test_center_point_counts_the_image_border_as_boundary():
    # the whole image is the mask: the deepest pixel is the image centre, not a corner
    assert center_point(np.ones((7, 7), bool)) == (3, 3)


def test_center_point_of_a_split_mask_lands_in_the_widest_part():
    m = _rect(20, 30, 1, 4, 1, 4) | _rect(20, 30, 8, 19, 15, 26)  # 3x3 and 11x11 parts
    x, y = center_point(m)
    assert (x, y) == (20, 13)


def test_random_point_is_inside_and_uniform():
    m = _rect(10, 10, 2, 4, 5, 8)
    pts = {random_point(m, _rng(s)) for s in range(200)}
    assert all(m[y, x] for x, y in pts)
    assert len(pts) == 6  # every one of the 6 pixels is drawn


def test_point_box_and_mask_box():
    assert point_box(10, 20) == [7, 17, 13, 23]  # official +-3 px
    assert mask_box(_rect(10, 10, 2, 4, 5, 8)) == [5.0, 2.0, 8.0, 4.0]
    with pytest.raises(ValueError, match="empty"):
        mask_box(np.zeros((4, 4), bool))


def test_repeat_to_follows_the_official_order():
    # num_proposals // M + 1 copies concatenated, then truncated
    assert repeat_to(3, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert repeat_to(25, 20).tolist() == list(range(20))
    assert repeat_to(0, 20).tolist() == []


# ----------------------------------------------------------------------------- regions
def test_rasterize_polygon_and_scribble():
    tri = rasterize_polygon([[0, 0], [9, 0], [0, 9]], (10, 10))
    assert tri[0, 0] and tri[0, 9] and tri[9, 0] and not tri[9, 9]
    with pytest.raises(ValueError, match="at least 3"):
        rasterize_polygon([[0, 0], [1, 1]], (4, 4))
    line = rasterize_scribble([np.array([[1, 5], [8, 5]])], (10, 10), thickness=1)
    assert line[5, 1:9].all() and line.sum() == 8
    dot = rasterize_scribble([np.array([[3, 4]])], (10, 10), thickness=1)
    assert dot[4, 3] and dot.sum() == 1


def test_random_scribble_stays_inside_the_mask():
    m = _rect(40, 40, 5, 30, 10, 35)
    for s in range(20):
        stroke = random_scribble(m, _rng(s))
        assert stroke.any() and not (stroke & ~m).any()


def test_random_polygon_approximates_the_mask():
    m = _rect(60, 60, 10, 50, 5, 45)
    for s in range(5):
        poly = rasterize_polygon(random_polygon(m, _rng(s)), m.shape)
        iou = (poly & m).sum() / (poly | m).sum()
        assert iou > 0.8


def test_jitter_mask_is_close_and_never_empty():
    m = _rect(100, 100, 20, 80, 20, 80)
    for s in range(10):
        j = jitter_mask(m, _rng(s))
        assert j.any() and (j & m).sum() / (j | m).sum() > 0.7
    tiny = _rect(10, 10, 4, 5, 4, 5)
    assert jitter_mask(tiny, _rng(0)).any()


def test_center_scribble_is_deterministic_along_the_principal_axis():
    bar = _rect(30, 60, 10, 19, 5, 55)  # horizontal bar, 9 rows x 50 cols
    a, b = center_scribble(bar), center_scribble(bar)
    assert np.array_equal(a, b) and not (a & ~bar).any()
    cx, cy = center_point(bar)
    assert a[cy, cx]
    ys, xs = np.nonzero(a)
    assert xs.max() - xs.min() > 5 * (ys.max() - ys.min())  # horizontal stroke
    tall = center_scribble(bar.T)
    ys, xs = np.nonzero(tall)
    assert ys.max() - ys.min() > 5 * (xs.max() - xs.min())  # vertical stroke


# ----------------------------------------------------------------------------- prompt sets
def test_prompts_validation():
    with pytest.raises(ValueError, match="unknown prompt kinds"):
        Prompts(["click"], torch.zeros(1, 4), (4, 4))
    with pytest.raises(ValueError, match="need their rasters"):
        Prompts(["mask"], torch.zeros(1, 4), (4, 4))
    with pytest.raises(ValueError, match="R=1"):
        Prompts(["mask", "box"], torch.zeros(2, 4), (4, 4), torch.zeros(2, 4, 4, dtype=bool))
    p = Prompts(["box", "mask"], torch.zeros(2, 4), (4, 4), torch.ones(1, 4, 4, dtype=bool))
    assert p.region_index.tolist() == [1] and len(p) == 2


def test_sample_training_prompts_repeats_and_targets_entities():
    masks = np.stack([_rect(50, 60, 0, 20, 0, 30), _rect(50, 60, 25, 50, 30, 60)])
    prompts, index = sample_training_prompts(masks, 20, ALL, _rng(1))
    assert len(prompts) == 20 and index.tolist() == [0, 1] * 10
    assert set(prompts.kinds) == set(PROMPT_KINDS)  # every kind drawn with equal weights
    regions = iter(prompts.regions)
    for kind, box, i in zip(prompts.kinds, prompts.boxes.tolist(), index):
        m = masks[i]
        if kind == "point":  # a 6 x 6 box centred on a pixel of the mask
            assert box[2] - box[0] == 6 and box[3] - box[1] == 6
            assert m[int(box[1] + 3), int(box[0] + 3)]
        elif kind == "box":
            assert box == mask_box(m)
        else:
            region = next(regions).numpy()
            assert box == mask_box(region)
            assert (region & m).sum() / region.sum() > 0.6


def test_sample_training_prompts_kind_weights_and_errors():
    masks = _rect(30, 30, 5, 20, 5, 20)[None]
    prompts, _ = sample_training_prompts(masks, 20, {"point": 1.0}, _rng(0))
    assert prompts.kinds == ["point"] * 20 and prompts.regions is None
    prompts, index = sample_training_prompts(np.zeros((0, 30, 30), bool), 20, ALL, _rng(0))
    assert len(prompts) == 0 and len(index) == 0
    with pytest.raises(ValueError, match="unknown prompt kinds"):
        sample_training_prompts(masks, 2, {"lasso": 1.0}, _rng(0))
    with pytest.raises(ValueError, match="positive sum"):
        sample_training_prompts(masks, 2, {"point": 0.0}, _rng(0))


def test_evaluation_prompts_order_and_values():
    masks = np.stack([_rect(20, 20, 2, 7, 2, 7), _rect(20, 20, 10, 20, 0, 20),
                      np.zeros((20, 20), bool)])
    prompts, index, modes = evaluation_prompts(masks)
    assert modes == ["point"] * 3 + ["box"] * 3 + ["scribble"] * 3
    assert index.tolist() == [0, 1, 2] * 3
    boxes = prompts.boxes.tolist()
    assert boxes[0] == point_box(4, 4)
    assert boxes[1] == point_box(*center_point(masks[1]))
    assert boxes[2] == point_box(0, 0)  # an empty (vanished) segment: pixel (0, 0)
    assert boxes[3] == [2, 2, 7, 7] and boxes[4] == [0, 10, 20, 20]
    assert prompts.regions.shape == (3, 20, 20) and prompts.region_index.tolist() == [6, 7, 8]
    assert prompts.regions[0][4, 4] and not (prompts.regions[0].numpy() & ~masks[0]).any()


# ----------------------------------------------------------------------------- mappers
@pytest.fixture(scope="module")
def sam_record(tmp_path_factory):
    """A tiny COCO-panoptic record (3 segments + a crowd one) of a "coco_sam" dataset."""
    root = tmp_path_factory.mktemp("sam")
    h, w = 60, 80
    ids = np.zeros((h, w), np.int64)
    ids[:, :] = 3  # stuff background
    ids[5:25, 5:35] = 1
    ids[30:55, 40:75] = 2
    ids[0:4, 70:80] = 4  # crowd
    ids[57:60, 0:5] = 5  # a 15 px segment: dropped in training (< 32 px)
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    Image.fromarray(rgb).save(root / "pan.png")
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(img).save(root / "img.jpg")
    name = "omgseg_test_prompts_sam"
    if name not in MetadataCatalog.list():
        MetadataCatalog.get(name).set(evaluator_type="coco_sam", class_agnostic=True,
                                      stuff_classes=["a", "b", "c"], thing_classes=["a", "b"])
    segs = [dict(id=1, category_id=0, iscrowd=0, isthing=True),
            dict(id=2, category_id=1, iscrowd=0, isthing=True),
            dict(id=3, category_id=2, iscrowd=0, isthing=False),
            dict(id=4, category_id=0, iscrowd=1, isthing=True),
            dict(id=5, category_id=1, iscrowd=0, isthing=True)]
    return dict(file_name=str(root / "img.jpg"), pan_seg_file_name=str(root / "pan.png"),
                image_id=1, height=h, width=w, segments_info=segs, dataset_name=name), ids


def _train_mapper(kinds=None, scale=(1.0, 1.0), crop=(60, 80)):
    from omgseg.data.dataset_mappers import build_lsj_augmentations

    shared, per_frame = build_lsj_augmentations(crop, scale, 0.5)
    return PromptDatasetMapper(augmentations=shared + per_frame, image_format="RGB",
                               num_prompts=20, min_mask_area=32, kind_weights=kinds or ALL)


def test_prompt_mapper_output_and_prompts_from_augmented_masks(sam_record):
    record, _ = sam_record
    np.random.seed(3)
    out = _train_mapper(scale=(0.5, 1.5), crop=(48, 64))(record)
    assert out["task"] == "prompt" and out["video"].shape[:2] == (1, 3)
    (inst,) = out["instances"]
    prompts = out["prompts"]
    h, w = out["video"].shape[-2:]
    assert prompts.image_size == (h, w) and inst.image_size == (h, w)
    assert len(prompts) == 20 == len(inst)
    assert (inst.gt_classes == -1).all()
    assert set(inst.gt_ids.tolist()) <= {1, 2, 3}  # crowd and the 15 px segment dropped
    assert (inst.gt_masks.flatten(1).sum(1) >= 32).all()
    regions = iter(prompts.regions if prompts.regions is not None else [])
    for kind, box, mask in zip(prompts.kinds, prompts.boxes.tolist(), inst.gt_masks):
        if kind == "point":
            assert mask[int(box[1] + 3), int(box[0] + 3)]  # the click is on the target
        elif kind == "box":
            assert box == mask_box(mask.numpy())
        else:
            region = next(regions)
            assert (region & mask).sum() / region.sum() > 0.5


def test_prompt_mapper_config_official_values(tiny_cfg):
    from detectron2.config import get_cfg

    from omgseg import add_omgseg_config

    defaults = get_cfg()
    add_omgseg_config(defaults)  # the official values are the defaults
    mapper = PromptDatasetMapper(defaults, is_train=True)
    assert mapper.num_prompts == 20 and mapper.min_mask_area == 32
    resize = [a for a in mapper.augmentations.augs if type(a).__name__ == "ScaleJitterResize"]
    assert resize[0].ratio_range == (0.1, 2.0)
    assert mapper.kind_weights == dict(zip(PROMPT_KINDS, defaults.INPUT.PROMPT.KIND_WEIGHTS))
    # the tiny demo config narrows the jitter for its 192 px crops
    mapper = PromptDatasetMapper(tiny_cfg, is_train=True)
    resize = [a for a in mapper.augmentations.augs if type(a).__name__ == "ScaleJitterResize"]
    assert resize[0].ratio_range == (0.8, 1.25)


def test_multi_task_mapper_sends_coco_sam_records_to_the_prompt_mapper(sam_record, tiny_cfg):
    record, _ = sam_record
    assert record_kind(record) == "prompt"
    assert record_kind(dict(record, dataset_name="", task="prompt")) == "prompt"
    assert record_kind(dict(record, dataset_name="")) == "image"
    assert MAPPERS_BY_RECORD_KIND["prompt"] is PromptDatasetMapper
    assert MAPPERS["omg_prompt"] is PromptDatasetMapper
    assert TEST_MAPPERS["coco_sam"] is PromptTestDatasetMapper
    mapper = MultiTaskDatasetMapper(tiny_cfg, is_train=True)
    out = mapper(record)
    assert out["task"] == "prompt" and "prompts" in out


def test_prompt_test_mapper_prompts_in_resized_coordinates(sam_record):
    record, ids = sam_record
    mapper = PromptTestDatasetMapper(augmentations=[T.ResizeShortestEdge(120, 1000)],
                                     image_format="RGB", modes=("point", "box"))
    out = mapper(record)
    assert out["image"].shape[-2:] == (120, 160)  # x2
    # every non-crowd segment (the 15 px one too) once per mode
    assert out["prompt_segment_ids"].tolist() == [1, 2, 3, 5, 1, 2, 3, 5]
    assert out["prompt_modes"] == ["point"] * 4 + ["box"] * 4
    boxes = out["prompts"].boxes.tolist()
    # segment 1 is rows 5..24, cols 5..34 -> rows 10..49, cols 10..69 at x2
    big = np.kron(ids == 1, np.ones((2, 2), bool))
    assert boxes[0] == point_box(*center_point(big))
    assert boxes[4] == [10.0, 10.0, 70.0, 50.0]


def test_omg_shapes_prompt_splits_are_registered():
    for split in ("train", "val"):
        meta = MetadataCatalog.get(f"omg_shapes_{split}_prompt")
        assert meta.evaluator_type == "coco_sam" and meta.class_agnostic
    coco = MetadataCatalog.get("coco_2017_val_sam")
    assert coco.evaluator_type == "coco_sam"


def test_synthetic_prompt_split_loads(synthetic_root):
    from detectron2.data import DatasetCatalog

    records = DatasetCatalog.get("omg_shapes_val_prompt")
    with open(os.path.join(synthetic_root, "panoptic_val.json")) as f:
        data = json.load(f)
    assert len(records) > 0 and len(records) <= len(data["images"])
    assert all(not s.get("iscrowd", 0) for r in records for s in r["segments_info"])
