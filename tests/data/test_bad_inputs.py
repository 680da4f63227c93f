"""Unusual or broken inputs: handled correctly, or a clear error naming the file / record / field.

Every case here gave a silently wrong result (or an error blaming the wrong thing) before.
"""
import json
import logging

import numpy as np
import pytest
from panopticapi.utils import id2rgb
from PIL import Image

from detectron2.data import detection_utils as d2_utils
from detectron2.data import transforms as T

from omgseg.data.dataset_mappers import (
    OMGTestDatasetMapper,
    PseudoVideoLSJDatasetMapper,
    build_lsj_augmentations,
    read_image_checked,
)
from omgseg.data.datasets.coco_panoptic import load_panoptic_json
from omgseg.data.datasets.omg_shapes import load_coco_instances
from omgseg.data.datasets.utils import panoptic_metadata
from omgseg.data.datasets.vipseg import load_video_panoptic_json
from omgseg.data.datasets.ytvis import load_ytvis_json

H, W = 40, 60
CATEGORIES = [
    {"id": 1, "name": "disc", "isthing": 1, "color": [220, 20, 60]},
    {"id": 2, "name": "ground", "isthing": 0, "color": [0, 128, 0]},
]
META = panoptic_metadata(CATEGORIES)


def identity_mapper(h=H, w=W, num_classes=2):
    """Training mapper whose augmentation is the identity (crop = image, r = 1, no flip)."""
    shared, per_frame = build_lsj_augmentations((h, w), (1.0, 1.0), 0.0)
    return PseudoVideoLSJDatasetMapper(
        is_train=True, num_frames=2, shared_augmentations=shared, frame_augmentations=per_frame,
        image_format="RGB", num_classes=num_classes,
    )


def save_rgb(path, h=H, w=W, seed=0):
    arr = np.random.RandomState(seed).randint(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return str(path), arr


# ------------------------------------------------------------------------------ image modes
def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = (np.arange(H * W).reshape(H, W) * 27).astype(np.uint16)  # up to 64773
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    path = str(tmp_path / "g16.png")
    expected = np.round(values / 257.0).astype(np.uint8)  # v * 255 / 65535
    # Detectron2's reader clips: every value >= 255 becomes 255.
    assert (d2_utils.read_image(path, "RGB")[..., 0] == 255).mean() > 0.9
    image = read_image_checked({"file_name": path}, "RGB")
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert np.array_equal(image[..., 0], expected) and np.array_equal(image[..., 2], expected)
    sem = np.zeros((H, W), np.uint8)
    Image.fromarray(sem).save(tmp_path / "sem.png")
    out = identity_mapper()({"file_name": path, "image_id": 1,
                             "sem_seg_file_name": str(tmp_path / "sem.png")})
    assert np.array_equal(out["video"][0, 1].numpy(), expected)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA"])
def test_other_modes_become_rgb(tmp_path, mode):
    rgb = np.random.RandomState(1).randint(0, 255, (H, W, 3), dtype=np.uint8)
    if mode == "P":
        image = Image.fromarray(rgb).quantize(colors=16)
    elif mode == "RGBA":
        image = Image.fromarray(np.dstack([rgb, np.full((H, W), 7, np.uint8)]), mode="RGBA")
    else:
        image = Image.fromarray(rgb).convert(mode)
    path = str(tmp_path / ("img.jpg" if mode == "CMYK" else "img.png"))
    image.save(path)
    expected = np.asarray(Image.open(path).convert("RGB"))
    if mode == "RGBA":
        assert np.array_equal(expected, rgb)  # alpha dropped, colours kept (not composited)
    if mode in ("L", "LA"):
        assert np.array_equal(expected[..., 0], expected[..., 1])
    record = {"file_name": path, "height": H, "width": W}
    assert np.array_equal(read_image_checked(record, "RGB"), expected)
    assert np.array_equal(read_image_checked(record, "BGR"), expected[..., ::-1])


def test_float_image_is_a_clear_error(tmp_path):
    Image.fromarray(np.ones((4, 5), np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(ValueError, match=r"f\.tiff.*floating-point"):
        read_image_checked({"file_name": str(tmp_path / "f.tiff")}, "RGB")


# ------------------------------------------------------------------------------ EXIF rotation
def _exif_jpeg(path, orientation=6):
    """A JPEG stored as H x W (40 x 60) whose EXIF says: rotate 90 degrees (shown 60 x 40)."""
    yy, xx = np.mgrid[:H, :W]
    arr = np.stack([xx * 4, yy * 6, np.zeros_like(xx)], 2).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    return str(path), arr


def test_exif_rotation_follows_the_annotated_size(tmp_path, caplog):
    path, stored = _exif_jpeg(tmp_path / "rotated.jpg")
    # Detectron2 rotates, then blames the annotation for the size mismatch.
    with pytest.raises(d2_utils.SizeMismatchError, match="check the width/height"):
        d2_utils.check_image_size({"file_name": path, "height": H, "width": W},
                                  d2_utils.read_image(path, "RGB"))
    # Annotations in the stored orientation: the stored pixels, and a warning naming the file.
    with caplog.at_level(logging.WARNING):
        image = read_image_checked({"file_name": path, "height": H, "width": W}, "RGB")
    assert image.shape == (H, W, 3) and np.abs(image.astype(int) - stored).mean() < 3
    assert "rotated.jpg" in caplog.text and "stored orientation is used" in caplog.text
    # Annotations in the rotated orientation: Detectron2's behaviour (EXIF applied).
    rotated = read_image_checked({"file_name": path, "height": W, "width": H}, "RGB")
    assert rotated.shape == (W, H, 3)
    assert np.array_equal(rotated, d2_utils.read_image(path, "RGB"))
    # No size in the record: the semantic PNG tells which orientation was annotated.
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "sem.png")
    record = {"file_name": path, "image_id": 3, "sem_seg_file_name": str(tmp_path / "sem.png")}
    out = identity_mapper()(record)
    assert out["video"].shape == (2, 3, H, W) and (out["height"], out["width"]) == (H, W)
    # Neither orientation: the error says that the file has an EXIF rotation.
    with pytest.raises(ValueError, match=r"rotated\.jpg.*\(50, 50\).*EXIF orientation 6"):
        read_image_checked({"file_name": path, "height": 50, "width": 50}, "RGB")


def test_plain_size_mismatch_names_image_and_record(tmp_path):
    path, _ = save_rgb(tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"a\.png .*\(40, 60\).*image_id 9.*\(41, 60\)"):
        read_image_checked({"file_name": path, "image_id": 9, "height": 41, "width": 60}, "RGB")


# ------------------------------------------------------------------------------ panoptic PNGs
def _panoptic_record(tmp_path, ids_map, segments, name="pan"):
    image, _ = save_rgb(tmp_path / f"{name}.jpg")
    Image.fromarray(id2rgb(ids_map)).save(tmp_path / f"{name}.png")
    return {"file_name": image, "image_id": 5, "height": H, "width": W,
            "pan_seg_file_name": str(tmp_path / f"{name}.png"), "segments_info": segments}


def _two_segments():
    ids = np.zeros((H, W), np.int64)
    ids[:20] = 26  # ground
    ids[25:, 10:30] = 7001  # disc
    segs = [{"id": 26, "category_id": 1, "iscrowd": 0, "isthing": False},
            {"id": 7001, "category_id": 0, "iscrowd": 0, "isthing": True}]
    return ids, segs


def test_panoptic_ids_must_match_the_png(tmp_path):
    ids, segs = _two_segments()
    mapper = identity_mapper()
    good = _panoptic_record(tmp_path, ids, segs)
    inst = mapper(good)["instances"][0]
    assert inst.gt_ids.tolist() == [26, 7001] and inst.gt_classes.tolist() == [1, 0]
    assert np.array_equal(inst.gt_masks[1].numpy(), ids == 7001)

    # A json segment absent from the PNG (was: silently dropped, PQ of GT vs itself < 100).
    extra = segs + [{"id": 99, "category_id": 0, "iscrowd": 0}]
    with pytest.raises(ValueError, match=r"pan\.png.*pan\.jpg.*image_id 5.*absent from the PNG: "
                                         r"\[99\]"):
        mapper(dict(good, segments_info=extra))
    # A PNG segment absent from the json.
    with pytest.raises(ValueError, match=r"pan\.png.*non-zero ids in the PNG absent from "
                                         r"'segments_info': \[7001\]"):
        mapper(dict(good, segments_info=segs[:1]))
    # The same id listed twice.
    with pytest.raises(ValueError, match=r"listed twice.*\[26\]"):
        mapper(dict(good, segments_info=segs + segs[:1]))


def test_evaluation_checks_panoptic_ground_truth_ids(tmp_path):
    """The test mapper checks what the evaluator will score: a json segment absent from the PNG
    (panopticapi counts it as a miss, so ground truth against itself scores below PQ 100) and a
    PNG segment absent from the json (panopticapi skips it) are errors naming the PNG."""
    from detectron2.config import get_cfg

    from omgseg import add_omgseg_config

    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.INPUT.MIN_SIZE_TEST = 0  # no resize
    mapper = OMGTestDatasetMapper(cfg, is_train=False, dataset_name="x")
    ids, segs = _two_segments()
    good = _panoptic_record(tmp_path, ids, segs)
    assert mapper(dict(good))["image"].shape == (3, H, W)
    extra = segs + [{"id": 99, "category_id": 0, "iscrowd": 0}]
    with pytest.raises(ValueError, match=r"pan\.png.*absent from the PNG: \[99\]"):
        mapper(dict(good, segments_info=extra))
    with pytest.raises(ValueError, match=r"pan\.png.*absent from 'segments_info': \[7001\]"):
        mapper(dict(good, segments_info=segs[:1]))


def test_panoptic_png_of_the_wrong_size(tmp_path):
    ids, segs = _two_segments()
    record = _panoptic_record(tmp_path, ids[:, :50], segs)
    with pytest.raises(ValueError, match=r"pan\.png.*pan_seg_file_name.*\(40, 50\).*\(40, 60\)"):
        identity_mapper()(record)


def test_all_void_panoptic_image_trains(tmp_path):
    record = _panoptic_record(tmp_path, np.zeros((H, W), np.int64), [])
    out = identity_mapper()(record)  # was: "empty 'segments_info'" error, training stopped
    assert [len(i) for i in out["instances"]] == [0, 0]
    assert out["instances"][0].gt_masks.shape == (0, H, W)
    # An image listed without any annotation entry (no PNG): all void too.
    no_png = {k: v for k, v in record.items() if k != "pan_seg_file_name"}
    assert [len(i) for i in identity_mapper()(no_png)["instances"]] == [0, 0]


# ------------------------------------------------------------------------------ json files
def _panoptic_tree(tmp_path, images, annotations):
    (tmp_path / "img").mkdir(exist_ok=True)
    (tmp_path / "pan").mkdir(exist_ok=True)
    for img in images:
        save_rgb(tmp_path / "img" / img["file_name"])
    for ann in annotations:
        void = id2rgb(np.zeros((H, W), np.int64))
        Image.fromarray(void).save(tmp_path / "pan" / ann["file_name"])
    path = tmp_path / "panoptic.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": CATEGORIES}))
    return str(path), str(tmp_path / "img"), str(tmp_path / "pan")


def _img(i):
    return {"id": i, "file_name": f"{i:03d}.jpg", "height": H, "width": W}


def _ann(i):
    return {"image_id": i, "file_name": f"{i:03d}.png", "segments_info": []}


def test_panoptic_json_images_without_annotation_entry_are_kept(tmp_path, caplog):
    json_file, img, pan = _panoptic_tree(tmp_path, [_img(1), _img(2), _img(3)],
                                         [_ann(1), _ann(3)])
    with caplog.at_level(logging.WARNING):
        records = load_panoptic_json(json_file, img, pan, None, META)
    # Was: image 2 silently missing from the dataset (and from evaluation).
    assert [r["image_id"] for r in records] == [1, 2, 3]
    assert records[1]["segments_info"] == [] and "pan_seg_file_name" not in records[1]
    assert (records[1]["height"], records[1]["width"]) == (H, W)
    assert "1 of 3 images have no annotation entry" in caplog.text and "[2]" in caplog.text


@pytest.mark.parametrize(
    "images, annotations, message",
    [
        ([_img(1), _img(1)], [_ann(1)], r"duplicate image id \(1\)"),
        ([_img(1)], [_ann(1), dict(_ann(1), file_name="x.png")],
         r"duplicate image id of an annotation entry \(1\)"),
        ([_img(1)], [_ann(1), _ann(4)], r"not in 'images': \[4\]"),
    ],
)
def test_panoptic_json_duplicate_and_orphan_ids(tmp_path, images, annotations, message):
    json_file, img, pan = _panoptic_tree(tmp_path, images, annotations)
    with pytest.raises(ValueError, match=r"panoptic\.json: .*" + message):
        load_panoptic_json(json_file, img, pan, None, META)


def _coco_instances(tmp_path, images, name="inst.json"):
    (tmp_path / "img").mkdir(exist_ok=True)
    for img in images:
        save_rgb(tmp_path / "img" / img["file_name"])
    anns = [{"id": k + 1, "image_id": img["id"], "category_id": 1, "iscrowd": 0, "area": 100.0,
             "bbox": [0, 0, 10, 10], "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]}
            for k, img in enumerate(images)]
    path = tmp_path / name
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "disc"}]}))
    return str(path), str(tmp_path / "img")


def test_coco_instances_duplicate_image_ids(tmp_path):
    images = [_img(1), dict(_img(1), file_name="other.jpg")]
    json_file, img = _coco_instances(tmp_path, images)
    # Detectron2 alone: one record silently carrying both images' annotations.
    from detectron2.data.datasets import load_coco_json

    (rec,) = load_coco_json(json_file, img, "omgseg_test_bad_inputs_dup")
    assert len(rec["annotations"]) == 2
    with pytest.raises(ValueError, match=r"inst\.json: duplicate image id \(1\)"):
        load_coco_instances(json_file, img, "omgseg_test_bad_inputs_dup2")


def _malformed(tmp_path, name):
    path = tmp_path / name
    path.write_text('{"images": [1, 2,,]}')
    return str(path)


def test_malformed_json_names_the_file(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "pan").mkdir()
    bad = _malformed(tmp_path, "broken.json")
    with pytest.raises(ValueError, match=r"Malformed JSON in .*broken\.json.*line 1"):
        load_panoptic_json(bad, str(tmp_path / "img"), str(tmp_path / "pan"), None, META)
    with pytest.raises(ValueError, match=r"Malformed JSON in .*broken\.json"):
        load_coco_instances(bad, str(tmp_path / "img"), "omgseg_test_bad_inputs_malformed")
    with pytest.raises(ValueError, match=r"Malformed JSON in .*broken\.json"):
        load_ytvis_json(bad, str(tmp_path / "img"))
    with pytest.raises(ValueError, match=r"Malformed JSON in .*broken\.json"):
        load_video_panoptic_json(bad, str(tmp_path / "img"), str(tmp_path / "pan"), META)


def test_duplicate_video_ids(tmp_path):
    (tmp_path / "img").mkdir()
    video = {"id": 3, "file_names": ["a/0.jpg"], "height": H, "width": W, "length": 1}
    path = tmp_path / "ytvis.json"
    path.write_text(json.dumps({"videos": [video, video], "categories": [], "annotations": []}))
    with pytest.raises(ValueError, match=r"ytvis\.json: duplicate video id \(3\)"):
        load_ytvis_json(str(path), str(tmp_path / "img"))


# ------------------------------------------------------------------------------ test mapper
def test_test_mapper_reads_like_the_training_mapper(tmp_path):
    values = (np.arange(H * W).reshape(H, W) * 27).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    mapper = OMGTestDatasetMapper(augmentations=[T.ResizeShortestEdge(20, 100)],
                                  image_format="RGB", dataset_name="x")
    out = mapper({"file_name": str(tmp_path / "g16.png"), "image_id": 1, "annotations": []})
    assert out["image"].shape == (3, 20, 30) and out["dataset_name"] == "x"
    assert "annotations" not in out and (out["height"], out["width"]) == (H, W)
    assert int(out["image"].max()) > 200  # scaled, not a 255 plateau or a dark 8-bit clip
    assert (out["image"] == 255).float().mean() < 0.05


def test_vipseg_video_without_frames_is_reported(tmp_path, caplog):
    (tmp_path / "img" / "b").mkdir(parents=True)
    (tmp_path / "pan" / "b").mkdir(parents=True)
    save_rgb(tmp_path / "img" / "b" / "0001.jpg")
    Image.fromarray(id2rgb(np.zeros((H, W), np.int64))).save(tmp_path / "pan" / "b" / "0001.png")
    frame = {"id": "0001", "file_name": "0001.png", "height": H, "width": W}
    data = {"videos": [{"video_id": "a", "images": []}, {"video_id": "b", "images": [frame]}],
            "annotations": [{"video_id": "b", "annotations": [
                {"image_id": "0001", "file_name": "0001.png", "segments_info": []}]}],
            "categories": CATEGORIES}
    (tmp_path / "vps.json").write_text(json.dumps(data))
    args = (str(tmp_path / "vps.json"), str(tmp_path / "img"), str(tmp_path / "pan"), META)
    with caplog.at_level(logging.WARNING):
        records = load_video_panoptic_json(*args)
    assert [r["video_id"] for r in records] == ["b"]
    assert "1 videos list no frame and are left out: ['a']" in caplog.text
    data["videos"].append(data["videos"][1])
    (tmp_path / "vps.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"vps\.json: duplicate video id \('b'\)"):
        load_video_panoptic_json(*args)
