"""Conversions behind datasets/prepare_*.py, on hand-made inputs with known answers, the input
checks they share with the loaders, and the thin CLIs themselves (called in-process through
their main()). The modules live in datasets/, which pytest puts on sys.path (setup.cfg)."""
import importlib
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from omgseg.data.datasets.builtin_categories import (
    ADE20K_150_CATEGORIES,
    ADE20K_INSTANCE100_TO_SEM150,
    readable_name,
)

from panoptic_conversions import (  # datasets/
    ade20k_panoptic_from_annotations,
    ade20k_semantic_to_detectron2,
    convert_panoptic_to_instances,
    convert_panoptic_to_semantic,
    encode_panoptic_ids,
    panoptic_to_semantic,
    read_panoptic_png,
    segment_area_bbox,
)
from video_conversions import (  # datasets/
    convert_vipseg_panoptic,
    resize_vipseg_frame,
    vipseg_mask_to_segments,
    vipseg_value_to_category,
)


def _script(name):
    """The module of datasets/<name> (e.g. "prepare_vipseg.py")."""
    return importlib.import_module(name[:-3])


# A 6 x 8 panoptic image: thing segment 5 (category 1), stuff segment 300 (category 193),
# a crowd thing segment 70000 (category 3) and void (0).
IDS = np.zeros((6, 8), np.int64)
IDS[1:4, 2:5] = 5
IDS[4:, :] = 300
IDS[0, 6:8] = 70000
SEGMENTS = [
    {"id": 5, "category_id": 1, "iscrowd": 0, "area": 9, "bbox": [2, 1, 3, 3]},
    {"id": 300, "category_id": 193, "iscrowd": 0, "area": 16, "bbox": [0, 4, 8, 2]},
    {"id": 70000, "category_id": 3, "iscrowd": 1, "area": 2, "bbox": [6, 0, 2, 1]},
]
CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1, "supercategory": "p", "color": [1, 2, 3]},
    {"id": 3, "name": "car", "isthing": 1, "supercategory": "v", "color": [4, 5, 6]},
    {"id": 193, "name": "grass", "isthing": 0, "supercategory": "g", "color": [7, 8, 9]},
]


@pytest.fixture
def panoptic_dataset(tmp_path):
    pan_root = tmp_path / "pan"
    pan_root.mkdir()
    Image.fromarray(encode_panoptic_ids(IDS)).save(pan_root / "000001.png")
    data = json.loads(json.dumps({  # a deep copy: tests may edit it
        "images": [{"id": 1, "file_name": "000001.jpg", "height": 6, "width": 8}],
        "annotations": [{"image_id": 1, "file_name": "000001.png", "segments_info": SEGMENTS}],
        "categories": CATEGORIES,
    }))
    pan_json = tmp_path / "panoptic.json"
    pan_json.write_text(json.dumps(data))
    return str(pan_json), str(pan_root), data


def _expected_semantic(person, car, grass):
    exp = np.full((6, 8), 255, np.uint8)
    exp[1:4, 2:5] = person
    exp[4:, :] = grass
    exp[0, 6:8] = car
    return exp


def test_panoptic_png_round_trip(tmp_path):
    Image.fromarray(encode_panoptic_ids(IDS)).save(tmp_path / "x.png")
    np.testing.assert_array_equal(read_panoptic_png(str(tmp_path / "x.png")), IDS)
    assert tuple(encode_panoptic_ids(np.array([[70000]]))[0, 0]) == (112, 17, 1)


def test_panoptic_to_semantic_known_answer(panoptic_dataset, tmp_path):
    pan_json, pan_root, _ = panoptic_dataset
    out = tmp_path / "sem"
    assert convert_panoptic_to_semantic(pan_json, pan_root, str(out), progress=False) == 1
    sem = np.asarray(Image.open(out / "000001.png"))
    assert sem.dtype == np.uint8
    np.testing.assert_array_equal(sem, _expected_semantic(0, 1, 2))  # json category order
    out2 = tmp_path / "sem2"
    convert_panoptic_to_semantic(pan_json, pan_root, str(out2), {1: 10, 3: 11, 193: 12},
                                 progress=False)
    np.testing.assert_array_equal(np.asarray(Image.open(out2 / "000001.png")),
                                  _expected_semantic(10, 11, 12))


def test_panoptic_to_semantic_unknown_category():
    with pytest.raises(ValueError, match="somefile.*unknown category id 9"):
        panoptic_to_semantic(IDS, [{"id": 5, "category_id": 9}], {1: 0}, "somefile")


def test_panoptic_to_instances_known_answer(panoptic_dataset, tmp_path):
    from pycocotools import mask as mask_util
    from pycocotools.coco import COCO

    pan_json, pan_root, _ = panoptic_dataset
    out = tmp_path / "instances.json"
    convert_panoptic_to_instances(pan_json, pan_root, str(out), progress=False)
    coco = COCO(str(out))
    assert sorted(coco.getCatIds()) == [1, 3]  # things only
    assert [c["name"] for c in coco.loadCats([1, 3])] == ["person", "car"]
    anns = sorted(coco.loadAnns(coco.getAnnIds()), key=lambda a: a["category_id"])
    assert len(anns) == 2  # the stuff segment is not an instance
    person, car = anns
    assert person["iscrowd"] == 0 and car["iscrowd"] == 1  # crowd kept, flagged
    assert person["area"] == 9 and person["bbox"] == [2, 1, 3, 3]
    assert car["bbox"] == [6, 0, 2, 1] and person["image_id"] == 1
    np.testing.assert_array_equal(mask_util.decode(person["segmentation"]).astype(bool), IDS == 5)
    np.testing.assert_array_equal(coco.annToMask(car).astype(bool), IDS == 70000)
    assert len({a["id"] for a in anns}) == 2
    assert coco.loadImgs([1])[0]["file_name"] == "000001.jpg"


def test_panoptic_to_instances_unknown_category(panoptic_dataset, tmp_path):
    pan_json, pan_root, data = panoptic_dataset
    data["annotations"][0]["segments_info"][1]["category_id"] = 55
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"bad\.json.*unknown category id 55"):
        convert_panoptic_to_instances(str(bad), pan_root, None, progress=False)


def test_missing_input_points_to_readme(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.json.*datasets/README\.md"):
        convert_panoptic_to_semantic(str(tmp_path / "nope.json"), str(tmp_path), str(tmp_path))


def test_coco_prepare_clis(panoptic_dataset, tmp_path):
    pan_json, pan_root, _ = panoptic_dataset
    sem_dir = tmp_path / "cli_sem"
    assert _script("prepare_coco_semantic.py").main(
        ["--panoptic-json", pan_json, "--panoptic-root", pan_root, "--out-dir", str(sem_dir),
         "--no-progress"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(sem_dir / "000001.png")),
                                  _expected_semantic(0, 1, 2))
    sem_coco = tmp_path / "cli_sem_coco"  # COCO 133-class ids: person 0, car 2, grass-merged 125
    _script("prepare_coco_semantic.py").main(
        ["--panoptic-json", pan_json, "--panoptic-root", pan_root, "--out-dir", str(sem_coco),
         "--coco-ids", "--no-progress"])
    np.testing.assert_array_equal(np.asarray(Image.open(sem_coco / "000001.png")),
                                  _expected_semantic(0, 2, 125))
    out = tmp_path / "cli_instances.json"
    assert _script("prepare_coco_instances_from_panoptic.py").main(
        ["--panoptic-json", pan_json, "--panoptic-root", pan_root, "--out", str(out),
         "--no-progress"]) == 0
    assert len(json.loads(out.read_text())["annotations"]) == 2


def test_coco_semantic_cli_on_coco_layout(panoptic_dataset, tmp_path):
    """Default mode: $root/coco/annotations/panoptic_val2017.json -> panoptic_semseg_val2017."""
    pan_json, pan_root, data = panoptic_dataset
    coco = tmp_path / "root" / "coco"
    (coco / "annotations").mkdir(parents=True)
    (coco / "annotations" / "panoptic_val2017.json").write_text(json.dumps(data))
    os.symlink(pan_root, coco / "panoptic_val2017")
    _script("prepare_coco_semantic.py").main(
        ["--root", str(tmp_path / "root"), "--splits", "val", "--no-progress"])
    np.testing.assert_array_equal(
        np.asarray(Image.open(coco / "panoptic_semseg_val2017" / "000001.png")),
        _expected_semantic(0, 2, 125))


# ------------------------------------------------------- input checks shared with the loaders
def _break(case, data, pan_json):
    """Spoil the panoptic dataset one way; returns the error expected (a regex)."""
    segs = data["annotations"][0]["segments_info"]
    if case == "segment_absent_from_png":
        segs.append({"id": 77, "category_id": 1, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1]})
        expect = r"000001\.png: segment id\(s\) \[77\] of segments_info are absent from the PNG"
    elif case == "png_id_not_in_segments_info":
        del segs[1]  # id 300 stays in the PNG
        expect = r"000001\.png: non-zero PNG id\(s\) \[300\] are not in segments_info"
    elif case == "png_of_the_wrong_size":
        data["images"][0]["height"] = 7
        expect = r"000001\.png: size 8 x 6 \(W x H\) differs from its image 1 .*8 x 7"
    elif case == "duplicate_image_id":
        data["images"].append(dict(data["images"][0], file_name="copy.jpg"))
        expect = r"panoptic\.json: duplicate image id \(1\)"
    elif case == "two_annotations_of_one_image":
        data["annotations"].append(json.loads(json.dumps(data["annotations"][0])))
        expect = r"panoptic\.json: duplicate image id in 'annotations' \(1\)"
    else:
        assert case == "malformed_json"
        with open(pan_json, "w") as f:
            f.write('{"images": [')
        return r"Malformed JSON in .*panoptic\.json"
    with open(pan_json, "w") as f:
        json.dump(data, f)
    return expect


@pytest.mark.parametrize("case", ["segment_absent_from_png", "png_id_not_in_segments_info",
                                  "png_of_the_wrong_size", "duplicate_image_id",
                                  "two_annotations_of_one_image", "malformed_json"])
def test_conversion_clis_report_inconsistent_panoptic_input(case, panoptic_dataset, tmp_path,
                                                           capsys):
    """What the loaders reject is reported by the converters too, naming the file, instead of
    being written as ignore / skipped; nothing is left in the output location."""
    pan_json, pan_root, data = panoptic_dataset
    expect = _break(case, data, pan_json)
    common = ["--panoptic-json", pan_json, "--panoptic-root", pan_root, "--no-progress"]
    assert _script("prepare_coco_semantic.py").main(
        common + ["--out-dir", str(tmp_path / "sem")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert re.search(expect, err), err
    assert _script("prepare_coco_instances_from_panoptic.py").main(
        common + ["--out", str(tmp_path / "inst" / "instances.json")]) == 1
    assert re.search(expect, capsys.readouterr().err)
    assert not (tmp_path / "sem").exists()
    assert not os.listdir(tmp_path / "inst")  # no json, no manifest, no temporary folder


def test_vipseg_split_list_with_a_duplicate_is_reported(tmp_path, capsys):
    vipseg = tmp_path / "VIPSeg"
    (vipseg / "VIPSeg_720P" / "panomasks" / "1_a").mkdir(parents=True)
    (vipseg / "val.txt").write_text("1_a\n1_a\n")
    assert _script("prepare_vipseg.py").main(
        ["--root", str(tmp_path), "--skip-resize", "--splits", "val", "--no-progress"]) == 1
    assert re.search(r"val\.txt: video\(s\) \['1_a'\] listed twice", capsys.readouterr().err)


def test_ade20k_annotation_of_the_wrong_size_is_reported(tmp_path, capsys):
    base = tmp_path / "ADEChallengeData2016"
    for sub, arr in (("annotations", np.ones((4, 6), np.uint8)),
                     ("annotations_instance", np.zeros((4, 6, 3), np.uint8))):
        os.makedirs(base / sub / "validation")
        Image.fromarray(arr).save(base / sub / "validation" / "ADE_val_1.png")
    os.makedirs(base / "images" / "validation")
    Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(
        base / "images" / "validation" / "ADE_val_1.jpg")
    assert _script("prepare_ade20k_pan_seg.py").main(
        ["--root", str(tmp_path), "--splits", "val", "--no-progress"]) == 1
    assert re.search(r"annotations/validation/ADE_val_1\.png: size 6 x 4 \(W x H\) differs "
                     r"from its image's 6 x 5", capsys.readouterr().err)
    assert sorted(os.listdir(base)) == ["annotations", "annotations_instance", "images"]


def test_coco_sample_prepare_cli(coco_sample_dir, tmp_path, capsys):
    out = tmp_path / "d2" / "coco_panoptic_sample"
    script = _script("prepare_coco_panoptic_sample.py")
    args = ["--sample-dir", coco_sample_dir, "--out", str(out), "--no-progress"]
    assert script.main(args) == 0
    assert len(os.listdir(out / "panoptic_semseg")) == 2
    assert len(json.loads((out / "instances.json").read_text())["categories"]) == 80
    stamp = (out / "instances.json").stat().st_mtime_ns
    capsys.readouterr()
    assert script.main(args) == 0  # same sample: kept
    assert "already generated" in capsys.readouterr().out
    assert (out / "instances.json").stat().st_mtime_ns == stamp
    (out / "panoptic_semseg" / "000000142238.png").unlink()  # damaged output: rebuilt
    assert script.main(args) == 0 and len(os.listdir(out / "panoptic_semseg")) == 2
    stamp = (out / "instances.json").stat().st_mtime_ns
    assert script.main(args + ["--force"]) == 0  # rebuilt
    assert (out / "instances.json").stat().st_mtime_ns != stamp
    assert sorted(os.listdir(out.parent)) == ["coco_panoptic_sample"]  # no temporary left


def test_segment_area_bbox_matches_a_direct_count():
    """pycocotools' area / toBbox give what counting pixels gives (outputs unchanged)."""
    rng = np.random.default_rng(0)
    masks = [np.zeros((5, 6), bool), np.ones((4, 7), bool), rng.random((9, 13)) > 0.7]
    masks.append(np.zeros((8, 8), bool))
    masks[-1][3, 5] = True
    masks.append(np.zeros((6, 9), bool))
    masks[-1][1:3, 2:9] = True
    for m in masks:
        ys, xs = np.nonzero(m)
        box = ([int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                int(ys.max() - ys.min() + 1)] if m.any() else [0, 0, 0, 0])
        area, bbox = segment_area_bbox(m)
        assert (area, bbox) == (int(m.sum()), box)
        assert all(type(v) is int for v in [area] + bbox)


# ------------------------------------------------------------------------------- ADE20K
def test_ade20k_semantic_shift():
    sem = np.array([[0, 1, 150], [13, 2, 0]], np.uint8)
    np.testing.assert_array_equal(ade20k_semantic_to_detectron2(sem),
                                  [[255, 0, 149], [12, 1, 255]])


def test_ade20k_categories_facts():
    assert len(ADE20K_150_CATEGORIES) == 150
    assert sum(c["isthing"] for c in ADE20K_150_CATEGORIES) == 100
    assert ADE20K_150_CATEGORIES[12]["name"] == "person" and ADE20K_150_CATEGORIES[12]["isthing"]
    assert not ADE20K_150_CATEGORIES[2]["isthing"]  # sky
    assert ADE20K_INSTANCE100_TO_SEM150[1] == 8 and ADE20K_INSTANCE100_TO_SEM150[100] == 150
    assert ADE20K_150_CATEGORIES[149]["name"] == "flag" and ADE20K_150_CATEGORIES[149]["isthing"]


def test_ade20k_panoptic_from_annotations_known_answer():
    sem = np.zeros((4, 6), np.uint8)
    sem[:2] = 1  # wall
    sem[2:, :4] = 13  # person (a thing class: taken from the instance PNG, not from here)
    sem[2:, 4:] = 3  # sky
    inst = np.zeros((4, 6, 3), np.uint8)
    inst[2:, :2] = (4, 1, 0)  # Instance100 class 4 -> SceneParse 13 (person), instance 1
    inst[2, 2] = (4, 2, 0)  # a second person; sem[3, 2:4] is person but in no instance: void
    inst[1, 5] = (4, 3, 0)  # an instance over stuff: pasted over the wall
    ids, segs = ade20k_panoptic_from_annotations(sem, inst, ADE20K_150_CATEGORIES,
                                                 ADE20K_INSTANCE100_TO_SEM150)
    by_cat = {}
    for s in segs:
        by_cat.setdefault(s["category_id"], []).append(s)
        assert (ids == s["id"]).sum() == s["area"] > 0
    assert sorted(by_cat) == [0, 2, 12]  # wall, sky, person
    assert [s["area"] for s in by_cat[0]] == [11]
    assert sorted(s["area"] for s in by_cat[12]) == [1, 1, 4]
    assert by_cat[2][0]["bbox"] == [4, 2, 2, 2]
    assert ids[3, 2] == 0 and ids[3, 3] == 0 and ids[2, 3] == 0
    with pytest.raises(ValueError, match="instance class 101"):
        bad = inst.copy()
        bad[0, 0] = (101, 9, 0)
        ade20k_panoptic_from_annotations(sem, bad, ADE20K_150_CATEGORIES,
                                         ADE20K_INSTANCE100_TO_SEM150)


def test_ade20k_prepare_clis(tmp_path):
    base = tmp_path / "ADEChallengeData2016"
    sem = np.zeros((4, 6), np.uint8)
    sem[:2] = 1
    sem[2:] = 13
    inst = np.zeros((4, 6, 3), np.uint8)
    inst[2:, :3] = (4, 1, 0)
    inst[2:, 3:] = (4, 2, 0)
    for split, d in (("train", "training"), ("val", "validation")):
        for sub, arr in (("annotations", sem), ("annotations_instance", inst)):
            os.makedirs(base / sub / d)
            Image.fromarray(arr).save(base / sub / d / f"ADE_{split}_1.png")
        os.makedirs(base / "images" / d)
        Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(
            base / "images" / d / f"ADE_{split}_1.jpg")
    args = ["--root", str(tmp_path), "--no-progress"]
    assert _script("prepare_ade20k_sem_seg.py").main(args) == 0
    out = np.asarray(Image.open(base / "annotations_detectron2" / "validation" / "ADE_val_1.png"))
    np.testing.assert_array_equal(out, sem - np.uint8(1))
    assert _script("prepare_ade20k_pan_seg.py").main(args) == 0
    pan = json.loads((base / "ade20k_panoptic_val.json").read_text())
    assert pan["images"][0] == {"id": "ADE_val_1", "file_name": "ADE_val_1.jpg", "height": 4,
                                "width": 6}
    assert len(pan["categories"]) == 150
    segs = pan["annotations"][0]["segments_info"]
    assert sorted(s["category_id"] for s in segs) == [0, 12, 12]
    ids = read_panoptic_png(str(base / "ade20k_panoptic_val" / "ADE_val_1.png"))
    assert set(np.unique(ids)) == {s["id"] for s in segs}
    inst_json = json.loads((base / "ade20k_panoptic_val_instances.json").read_text())
    assert [a["category_id"] for a in inst_json["annotations"]] == [12, 12]
    assert len(inst_json["categories"]) == 100


# ------------------------------------------------------------------------------- VIPSeg
def test_vipseg_value_mapping():
    assert vipseg_value_to_category(1) == (0, False)
    assert vipseg_value_to_category(124) == (123, False)
    assert vipseg_value_to_category(6101) == (60, True)  # person, instance 1
    assert vipseg_value_to_category(12403) == (123, True)
    with pytest.raises(ValueError):
        vipseg_value_to_category(12500)
    mask = np.array([[0, 1, 1], [6101, 6102, 6101]], np.uint16)
    ids, segs = vipseg_mask_to_segments(mask)
    assert [(s["id"], s["category_id"], s["area"]) for s in segs] == [
        (1, 0, 2), (6101, 60, 2), (6102, 60, 1)]
    assert segs[1]["bbox"] == [0, 1, 3, 1]
    assert readable_name("parasol_or_umbrella") == "parasol, umbrella"
    assert readable_name("Mobile_phone") == "mobile phone"


def test_vipseg_resize_frame(tmp_path):
    img = np.zeros((10, 20, 3), np.uint8)
    mask = np.zeros((10, 20), np.uint16)
    mask[:, 10:] = 6101
    Image.fromarray(img).save(tmp_path / "f.jpg")
    Image.fromarray(mask).save(tmp_path / "f.png")
    resize_vipseg_frame(str(tmp_path / "f.jpg"), str(tmp_path / "f.png"), str(tmp_path / "o.jpg"),
                        str(tmp_path / "o.png"), height=5)
    assert Image.open(tmp_path / "o.jpg").size == (10, 5)
    out = np.asarray(Image.open(tmp_path / "o.png"))
    assert out.shape == (5, 10) and set(np.unique(out)) == {0, 6101}  # nearest: no new values


def test_vipseg_panoptic_conversion_and_cli(tmp_path):
    vipseg = tmp_path / "VIPSeg"
    for vid in ("1_a", "2_b"):
        for t in range(2):
            os.makedirs(vipseg / "imgs" / vid, exist_ok=True)
            os.makedirs(vipseg / "panomasks" / vid, exist_ok=True)
            Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(
                vipseg / "imgs" / vid / f"0000{t}.jpg")
            mask = np.full((8, 12), 29, np.uint16)  # sky (stuff 28)
            mask[2:6, t:t + 4] = 6101
            Image.fromarray(mask).save(vipseg / "panomasks" / vid / f"0000{t}.png")
    (vipseg / "train.txt").write_text("1_a\n")
    (vipseg / "val.txt").write_text("2_b\n")
    assert _script("prepare_vipseg.py").main(["--root", str(tmp_path), "--no-progress"]) == 0
    root = vipseg / "VIPSeg_720P"
    assert Image.open(root / "images" / "1_a" / "00000.jpg").size == (1080, 720)
    val = json.loads((root / "panoptic_gt_VIPSeg_val.json").read_text())
    assert [v["video_id"] for v in val["videos"]] == ["2_b"] and len(val["categories"]) == 124
    frames = val["annotations"][0]["annotations"]
    assert [f["image_id"] for f in frames] == ["00000", "00001"]
    for f in frames:
        assert sorted((s["id"], s["category_id"]) for s in f["segments_info"]) == [
            (29, 28), (6101, 60)]
        ids = read_panoptic_png(str(root / "panomasksRGB" / "2_b" / f["file_name"]))
        assert set(np.unique(ids)) == {29, 6101}
        assert sum(s["area"] for s in f["segments_info"]) == 720 * 1080
    # convert again from the 720P masks only (--skip-resize path), into another folder
    out = convert_vipseg_panoptic(str(root), "train", ["1_a"], out_root=str(tmp_path / "o"),
                                  progress=False)
    assert out == str(tmp_path / "o" / "panoptic_gt_VIPSeg_train.json")
    assert os.path.isfile(tmp_path / "o" / "panomasksRGB" / "1_a" / "00001.png")
