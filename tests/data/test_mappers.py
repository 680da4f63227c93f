"""Training / test mappers on the real COCO panoptic sample and on tiny fabricated records."""
import copy
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from PIL import Image

from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.data import transforms as T
from detectron2.structures import BoxMode
from detectron2.data.datasets.builtin_meta import _get_builtin_metadata
from detectron2.data.datasets.coco_panoptic import load_coco_panoptic_json

from omgseg.config import add_omgseg_config
from omgseg.data.build import MAPPERS, build_test_mapper, build_train_mapper
from omgseg.data.dataset_mappers import (
    OMGTestDatasetMapper,
    PseudoVideoLSJDatasetMapper,
    ScaleJitterResize,
    build_lsj_augmentations,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COCO_SAMPLE = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "coco-panoptic-sample")
DATASET = "omgseg_test_mappers_coco_sample"  # metadata registered by this file only

needs_sample = pytest.mark.skipif(
    not os.path.isdir(COCO_SAMPLE), reason="COCO panoptic sample not available"
)


@pytest.fixture(scope="module")
def coco_meta():
    meta = _get_builtin_metadata("coco_panoptic_standard")
    if DATASET not in MetadataCatalog.list():
        MetadataCatalog.get(DATASET).set(**meta)
    return meta


@pytest.fixture(scope="module")
def coco_records(coco_meta):
    records = load_coco_panoptic_json(
        os.path.join(COCO_SAMPLE, "panoptic_examples.json"),
        os.path.join(COCO_SAMPLE, "input_images"),
        os.path.join(COCO_SAMPLE, "panoptic_examples"),
        coco_meta,
    )
    for r in records:
        r["dataset_name"] = DATASET
    return records


def make_mapper(crop_size=(256, 320), min_scale=0.5, max_scale=1.0, flip_prob=0.5, **kw):
    shared, per_frame = build_lsj_augmentations(crop_size, (min_scale, max_scale), flip_prob)
    args = dict(is_train=True, num_frames=2, shared_augmentations=shared,
                frame_augmentations=per_frame, image_format="RGB")
    args.update(kw)
    return PseudoVideoLSJDatasetMapper(**args)


def make_test_mapper(min_size, max_size):
    return OMGTestDatasetMapper(augmentations=[T.ResizeShortestEdge(min_size, max_size)],
                                image_format="RGB")


def gt_panoptic_masks(record):
    """{segment id: bool mask} for the non-crowd segments of a record, original size."""
    pan = np.asarray(Image.open(record["pan_seg_file_name"]).convert("RGB")).astype(np.int64)
    ids = pan[..., 0] + 256 * pan[..., 1] + 256 * 256 * pan[..., 2]
    return {s["id"]: ids == s["id"] for s in record["segments_info"] if not s["iscrowd"]}


def check_clip(out, T):
    video = out["video"]
    assert video.dtype == torch.uint8 and video.ndim == 4 and video.shape[:2] == (T, 3)
    H, W = video.shape[-2:]
    insts = out["instances"]
    assert len(insts) == T
    for inst in insts:
        assert inst.image_size == (H, W)
        assert inst.gt_masks.dtype == torch.bool and inst.gt_masks.shape[1:] == (H, W)
        assert inst.gt_classes.dtype == torch.int64 and inst.gt_ids.dtype == torch.int64
        assert torch.equal(inst.gt_ids, insts[0].gt_ids)
        assert torch.equal(inst.gt_classes, insts[0].gt_classes)
    # Every kept entity is visible in at least one frame.
    if len(insts[0]):
        visible = torch.stack([i.gt_masks.flatten(1).any(1) for i in insts]).any(0)
        assert bool(visible.all())
    return H, W


# ------------------------------------------------------------------------------------------
# Real COCO sample
# ------------------------------------------------------------------------------------------


@needs_sample
def test_panoptic_clip_contract(coco_records):
    mapper = make_mapper()
    np.random.seed(0)
    for record in coco_records:
        before = copy.deepcopy(record)
        out = mapper(record)
        assert record == before  # the dataset record is not modified
        H, W = check_clip(out, 2)
        assert H <= 256 and W <= 320
        assert out["task"] == "panoptic" and out["dataset_name"] == DATASET
        assert (out["height"], out["width"]) == Image.open(record["file_name"]).size[::-1]
        assert out["file_name"] == record["file_name"] and out["image_id"] == record["image_id"]
        crowd = {s["id"] for s in record["segments_info"] if s["iscrowd"]}
        by_id = {s["id"]: s["category_id"] for s in record["segments_info"]}
        inst = out["instances"][0]
        assert len(inst) > 0
        for sid, cls in zip(inst.gt_ids.tolist(), inst.gt_classes.tolist()):
            assert sid not in crowd and by_id[sid] == cls and 0 <= cls < 133
        for inst in out["instances"]:
            assert int(inst.gt_masks.sum(0).max()) <= 1  # non-overlapping


@needs_sample
def test_shared_flip_and_identity_resize_mirror_gt(coco_records):
    record = coco_records[0]
    h, w = Image.open(record["file_name"]).size[::-1]
    image = np.asarray(Image.open(record["file_name"]).convert("RGB"))
    gt = gt_panoptic_masks(record)
    for flip_prob in (1.0, 0.0):
        mapper = make_mapper(crop_size=(h, w), min_scale=1.0, max_scale=1.0, flip_prob=flip_prob)
        out = mapper(record)
        check_clip(out, 2)
        expected_img = image[:, ::-1] if flip_prob else image
        for t in range(2):
            frame = out["video"][t].permute(1, 2, 0).numpy()
            assert np.array_equal(frame, expected_img)
            inst = out["instances"][t]
            assert sorted(inst.gt_ids.tolist()) == sorted(k for k, m in gt.items() if m.any())
            for sid, mask in zip(inst.gt_ids.tolist(), inst.gt_masks.numpy()):
                expected = gt[sid][:, ::-1] if flip_prob else gt[sid]
                assert np.array_equal(mask, expected)


@needs_sample
def test_independent_crops_shared_scale(coco_records):
    # 360 x 640 image; at r = 1.5 the target is (180, 240): s = min(240 / 640, 180 / 360), so
    # the resized image is at least 135 x 240: always cropped.
    mapper = make_mapper(crop_size=(120, 160), min_scale=1.5, max_scale=2.0)
    differ = False
    for seed in range(4):
        np.random.seed(seed)
        out = mapper(coco_records[1])
        check_clip(out, 2)
        assert out["video"].shape[-2:] == (120, 160)  # both frames come from one resized image
        differ |= not torch.equal(out["video"][0], out["video"][1])
    assert differ


@needs_sample
def test_crop_larger_than_resized_image_keeps_whole_image(coco_records):
    record = coco_records[0]  # 427 x 640
    mapper = make_mapper(crop_size=(400, 400), min_scale=0.5, max_scale=0.5, num_frames=3)
    out = mapper(record)
    # Target (200, 200): s = min(200 / 640, 200 / 427) -> 133 x 200; no padding, no crop.
    assert out["video"].shape == (3, 3, 133, 200)
    assert torch.equal(out["video"][0], out["video"][2])


@needs_sample
def test_min_mask_area_zeroes_small_masks(coco_records):
    record = coco_records[1]
    kw = dict(crop_size=(360, 640), min_scale=1.0, max_scale=1.0, flip_prob=0.0)
    full = make_mapper(**kw)(record)["instances"][0]
    areas = full.gt_masks.flatten(1).sum(1)
    threshold = int(areas.float().median())
    small = make_mapper(min_mask_area=threshold, **kw)(record)["instances"][0]
    assert set(small.gt_ids.tolist()) == set(full.gt_ids[areas >= threshold].tolist())
    assert int(small.gt_masks.flatten(1).sum(1).min()) >= threshold


@needs_sample
def test_unknown_category_and_mismatched_segments(coco_records):
    mapper = make_mapper()
    bad = copy.deepcopy(coco_records[0])
    bad["segments_info"][0]["category_id"] = 500
    with pytest.raises(ValueError, match="category id 500.*vocabulary"):
        mapper(bad)
    # The constructor argument overrides the metadata.
    with pytest.raises(ValueError, match=r"category id 32 .*\[0, 10\)"):
        make_mapper(num_classes=10)(coco_records[0])
    # segments_info emptied but the PNG still has the segments: an error, not a void image.
    empty = dict(coco_records[0], segments_info=[])
    with pytest.raises(ValueError, match="000000142238.png.*non-zero ids in the PNG absent"):
        mapper(empty)
    no_png = {k: v for k, v in coco_records[0].items() if k != "pan_seg_file_name"}
    with pytest.raises(ValueError, match="pan_seg_file_name"):
        mapper(no_png)


@needs_sample
def test_test_mapper_and_tables(coco_records, tmp_path):
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = 96, 128
    cfg.INPUT.LSJ.CROP_SIZE = [64, 64]
    cfg.INPUT.DATASET_MAPPER_NAME = "omg_pseudo_video_lsj"  # the default is "omg_multi_task"
    train_mapper = build_train_mapper(cfg)
    assert isinstance(train_mapper, MAPPERS["omg_pseudo_video_lsj"])
    assert train_mapper.num_frames == cfg.INPUT.NUM_FRAMES
    assert tuple(train_mapper.frame_augmentations.augs[0].crop_size) == (64, 64)

    mapper = build_test_mapper(cfg, DATASET)
    assert isinstance(mapper, OMGTestDatasetMapper)
    record = {k: v for k, v in coco_records[0].items() if k != "dataset_name"}
    out = mapper(record)
    assert out["image"].dtype == torch.uint8 and tuple(out["image"].shape) == (3, 85, 128)
    assert (out["height"], out["width"]) == (427, 640)
    assert out["dataset_name"] == DATASET and out["image_id"] == record["image_id"]
    assert out["file_name"] == record["file_name"]

    cfg.INPUT.DATASET_MAPPER_NAME = "nope"
    with pytest.raises(KeyError, match="omg_pseudo_video_lsj"):
        build_train_mapper(cfg)


# ------------------------------------------------------------------------------------------
# Fabricated instance / semantic records and bad files
# ------------------------------------------------------------------------------------------


def write_image(path, h=40, w=60, mode="RGB"):
    rng = np.random.RandomState(0)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.randint(0, 255, size=(h, w, channels), dtype=np.uint8)
    Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode=mode).save(path)
    return str(path)


def test_instance_record(tmp_path):
    h, w = 40, 60
    image = write_image(tmp_path / "img.png", h, w)
    rle_mask = np.zeros((h, w), dtype=np.uint8, order="F")
    rle_mask[20:35, 30:50] = 1
    box = {"bbox": [0.0, 0.0, 1.0, 1.0], "bbox_mode": BoxMode.XYWH_ABS}  # boxes are not used
    annotations = [
        {"category_id": 1, "iscrowd": 0,
         "segmentation": [[5.0, 5.0, 25.0, 5.0, 25.0, 25.0, 5.0, 25.0]], **box},
        {"category_id": 2, "iscrowd": 1, "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]], **box},
        {"category_id": 3, "iscrowd": 0, "segmentation": mask_util.encode(rle_mask), **box},
        {"category_id": 0, "iscrowd": 0,  # uncompressed RLE, overlaps the polygon
         "segmentation": {"counts": [0, 10 * h, (w - 10) * h], "size": [h, w]}, **box},
    ]
    record = {"file_name": image, "image_id": 7, "height": h, "width": w,
              "annotations": annotations}
    mapper = make_mapper(crop_size=(h, w), min_scale=1.0, max_scale=1.0, flip_prob=0.0,
                         num_classes=4)
    out = mapper(record)
    check_clip(out, 2)
    assert out["task"] == "instance" and out["dataset_name"] == ""
    inst = out["instances"][1]
    assert inst.gt_ids.tolist() == [0, 2, 3]  # annotation indices, crowd skipped
    assert inst.gt_classes.tolist() == [1, 3, 0]
    masks = inst.gt_masks.numpy()
    assert masks[0, 10, 10] and not masks[0, 30, 30] and 350 <= masks[0].sum() <= 450
    assert np.array_equal(masks[1], rle_mask.astype(bool))
    assert masks[2][:, :10].all() and not masks[2][:, 10:].any()

    with pytest.raises(ValueError, match="category id 3.*vocabulary"):
        make_mapper(num_classes=3)(record)
    no_segm = dict(record, annotations=[{"category_id": 1, "iscrowd": 0, **box}])
    with pytest.raises(ValueError, match=r"annotations\[0\] has no 'segmentation'"):
        mapper(no_segm)
    no_box = dict(record, annotations=[{"category_id": 1, "segmentation": []}])
    with pytest.raises(ValueError, match=r"annotations\[0\] has no 'bbox'"):
        mapper(no_box)


def test_semantic_record_and_channels(tmp_path):
    h, w = 40, 60
    sem = np.full((h, w), 255, dtype=np.uint8)
    sem[:20] = 0
    sem[25:, 10:40] = 3
    Image.fromarray(sem).save(tmp_path / "sem.png")
    mapper = make_mapper(crop_size=(h, w), min_scale=1.0, max_scale=1.0, flip_prob=0.0,
                         num_classes=5)
    for mode in ("RGB", "L", "RGBA"):
        image = write_image(tmp_path / f"img_{mode}.png", h, w, mode)
        record = {"file_name": image, "image_id": mode,
                  "sem_seg_file_name": str(tmp_path / "sem.png")}
        out = mapper(record)
        check_clip(out, 2)
        assert out["video"].shape == (2, 3, h, w)
        assert (out["height"], out["width"]) == (h, w)
        inst = out["instances"][0]
        assert out["task"] == "semantic"
        assert inst.gt_ids.tolist() == [0, 3] and inst.gt_classes.tolist() == [0, 3]
        assert np.array_equal(inst.gt_masks[0].numpy(), sem == 0)
        assert np.array_equal(inst.gt_masks[1].numpy(), sem == 3)
        test_out = make_test_mapper(20, 100)(record)
        assert test_out["image"].shape == (3, 20, 30)

    with pytest.raises(ValueError, match="category id 3"):
        make_mapper(num_classes=3)(record)


def test_bad_records_and_files(tmp_path):
    mapper = make_mapper(num_classes=5)
    good = write_image(tmp_path / "good.png")
    with pytest.raises(ValueError, match="segments_info.*annotations.*sem_seg_file_name"):
        mapper({"file_name": good, "image_id": 1})

    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"this is not a jpeg")
    record = {"file_name": str(corrupt), "image_id": 1, "annotations": []}
    with pytest.raises(ValueError, match="corrupt.jpg.*file_name"):
        mapper(record)
    with pytest.raises(ValueError, match="corrupt.jpg"):
        make_test_mapper(20, 100)(record)

    missing = dict(record, file_name=str(tmp_path / "missing.jpg"))
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        mapper(missing)

    sem_missing = {"file_name": good, "image_id": 1, "sem_seg_file_name": str(tmp_path / "x.png")}
    with pytest.raises(FileNotFoundError, match="x.png.*sem_seg_file_name"):
        mapper(sem_missing)

    # Image without annotations: a clip with no entity.
    out = mapper({"file_name": good, "image_id": 1, "annotations": []})
    assert [len(i) for i in out["instances"]] == [0, 0]
    assert out["instances"][0].gt_masks.shape[0] == 0


def test_frame_transform_helpers_for_video_reuse():
    """The clip code takes a list of frames + shared / per-frame augmentations (the video
    mappers' path): shared flip + resize once, then one crop repeated over every frame."""
    from omgseg.data.dataset_mappers import FrameTargets, augment_clip, frames_to_instances

    yy, xx = np.mgrid[:30, :40]
    frames = [np.stack([xx * 6, yy * 8, np.full_like(xx, 50 * t)], 2).astype(np.uint8)
              for t in range(3)]  # smooth, so that bilinear and nearest resizing agree
    # int64 label map with large values (no uint8 fast path); entity 7 leaves after frame 0.
    # Entity 7 sits where every crop keeps it (rows 10..29, columns 40..49 after the flip and
    # the doubling), whatever offset the random crop draws.
    maps = [np.full((30, 40), 1000, dtype=np.int64) for _ in range(3)]
    maps[0][5:15, 15:20] = 300
    maps[1][5:, 20:] = 301
    maps[2][5:, 20:] = 301
    targets = [FrameTargets([7, 8], [1, 2], label_map=m, values=[300, 301]) for m in maps]
    shared = T.AugmentationList([T.RandomFlip(prob=1.0), ScaleJitterResize((60, 80), (1.0, 1.0))])
    crop = T.AugmentationList([T.RandomCrop("absolute", (50, 50))])
    out_frames, out_targets = augment_clip(frames, targets, shared, crop,
                                           independent_frames=False)
    assert all(f.shape == (50, 50, 3) for f in out_frames)
    insts = frames_to_instances(out_targets)
    assert [i.gt_ids.tolist() for i in insts] == [[7, 8]] * 3
    assert not insts[1].gt_masks[0].any() and not insts[0].gt_masks[1].any()
    # Frames 1 and 2 share their label map: one crop for the clip gives equal masks.
    assert torch.equal(insts[1].gt_masks, insts[2].gt_masks)
    # The flipped, doubled map has entity 8 at rows 10..59, columns 0..39 of 60 x 80; the crop
    # (offsets y0 <= 10, x0 <= 30) keeps rows 10 - y0 .. 49 and columns 0 .. 39 - x0.
    area = int(insts[1].gt_masks[1].sum())
    ys, xs = np.nonzero(insts[1].gt_masks[1].numpy())
    y0, x0 = 10 - ys.min(), 39 - xs.max()
    assert 0 <= y0 <= 10 and 0 <= x0 <= 30 and area == (50 - (10 - y0)) * (40 - x0)
    # Frame 0's image is frame 0 flipped, doubled, cropped at the same offset.
    expected = np.repeat(np.repeat(frames[0][:, ::-1], 2, 0), 2, 1)[y0:y0 + 50, x0:x0 + 50]
    assert np.abs(out_frames[0].astype(int) - expected.astype(int)).mean() < 3


# ------------------------------------------------------------------------------------------
# Large-scale jitter: the official mmdet RandomResize(keep_ratio=True) sizes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image_hw, ratio, expected_hw",
    [
        # landscape 427 x 640, target (1280, 736): s = min(1280/640, 736/427) = 1.72365
        ((427, 640), 1.0, (736, 1103)),
        # portrait 640 x 427: the same s -> 1103 x 736, taller than the 736-row crop
        ((640, 427), 1.0, (1103, 736)),
        # thin portrait 300 x 100: s = min(1280/300, 736/100) = 4.2667 -> 1280 x 427
        ((300, 100), 1.0, (1280, 427)),
        # r = 0.8: target (int(1024.0), int(588.8)) = (1024, 588): s = min(1024/640, 588/427)
        # -> (int(588 + 0.5), int(881.31 + 0.5)) = (588, 881); untruncated 588.8 would give 589
        ((427, 640), 0.8, (588, 881)),
        # a 2 x 3000 strip: s = 1280/3000 -> (int(0.853 + 0.5), 1280) = (1, 1280)
        ((2, 3000), 1.0, (1, 1280)),
        # a 1 x 3000 strip would round to 0 rows: kept at 1
        ((1, 3000), 1.0, (1, 1280)),
    ],
)
def test_lsj_resize_matches_official_sizes(image_hw, ratio, expected_hw):
    aug = ScaleJitterResize((736, 1280), (ratio, ratio))
    assert aug.output_size(image_hw, ratio) == expected_hw
    tfm = aug.get_transform(np.zeros(image_hw + (3,), np.uint8))
    assert isinstance(tfm, T.ResizeTransform) and (tfm.new_h, tfm.new_w) == expected_hw
    if image_hw == (640, 427):
        # Detectron2's ResizeScale fits the image inside (736, 1280): 736 x 491, not official.
        old = T.ResizeScale(ratio, ratio, 736, 1280).get_transform(np.zeros(image_hw + (3,)))
        assert (old.new_h, old.new_w) == (736, 491) != expected_hw


def test_lsj_ratio_is_drawn_uniformly_per_clip():
    aug = ScaleJitterResize((736, 1280), (0.8, 2.0))
    np.random.seed(0)
    widths = [aug.get_transform(np.zeros((427, 640, 3), np.uint8)).new_w for _ in range(400)]
    # w = 640 * min(1280 r / 640, int(736 r) / 427) ~ 1103 r for r in [0.8, 2]
    assert 0.8 * 1103 - 2 <= min(widths) and max(widths) <= 2.0 * 1103 + 2
    assert abs(np.mean(widths) - 1.4 * 1103.1) < 25


def test_pseudo_video_from_config_follows_the_official_pipeline(tmp_path):
    cfg = get_cfg()
    add_omgseg_config(cfg)
    mapper = PseudoVideoLSJDatasetMapper(cfg, is_train=True)
    flip, resize = mapper.shared_augmentations.augs
    (crop,) = mapper.frame_augmentations.augs
    assert isinstance(flip, T.RandomFlip) and flip.prob == 0.5 and flip.horizontal
    assert resize.target_size == (736, 1280) and resize.ratio_range == (0.8, 2.0)
    assert isinstance(crop, T.RandomCrop) and crop.crop_type == "absolute"
    assert tuple(crop.crop_size) == (736, 1280)
    # A 300 x 100 portrait image at r = 0.8 is fitted by its long side: 1024 x 341, cropped to
    # 736 x 341 (ResizeScale would fit it inside 588 x 1024: 588 x 196).
    cfg.INPUT.LSJ.MAX_SCALE = 0.8
    mapper = PseudoVideoLSJDatasetMapper(cfg, is_train=True)
    image = write_image(tmp_path / "portrait.png", 300, 100)
    out = mapper({"file_name": image, "image_id": 1, "annotations": []})
    assert out["video"].shape == (2, 3, 736, 341)


def test_thin_strip_trains(tmp_path):
    """A 2 x 3000 image gives 1-row frames instead of failing."""
    image = write_image(tmp_path / "strip.png", 2, 3000)
    sem = np.zeros((2, 3000), np.uint8)
    sem[:, 1500:] = 1
    Image.fromarray(sem).save(tmp_path / "strip_sem.png")
    record = {"file_name": image, "image_id": 1,
              "sem_seg_file_name": str(tmp_path / "strip_sem.png")}
    mapper = make_mapper(crop_size=(736, 1280), min_scale=1.0, max_scale=1.0, flip_prob=0.0,
                         num_classes=2)
    out = mapper(record)
    assert out["video"].shape == (2, 3, 1, 1280)
    inst = out["instances"][0]
    assert inst.gt_ids.tolist() == [0, 1]
    assert inst.gt_masks.shape == (2, 1, 1280)
    assert abs(int(inst.gt_masks[1].sum()) - 640) <= 1
