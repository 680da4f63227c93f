"""Dataset registration: names, metadata contracts, and loading through the registered loaders
(the real COCO sample; tiny format-correct trees in a temporary root for the real datasets;
a tiny generated OMG-Shapes benchmark)."""
import json
import os
import shutil
import uuid

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

import omgseg.data.datasets as D  # noqa: F401  (registers)
from omgseg.data.datasets.coco_panoptic import (
    get_coco_panoptic_metadata,
    register_all_coco_panoptic,
    register_all_coco_sam,
    register_coco_panoptic_sample,
)
from omgseg.data.datasets.utils import get_datasets_root

from panoptic_conversions import (  # datasets/ (pytest pythonpath)
    convert_ade20k_panoptic,
    convert_ade20k_sem_seg,
    convert_panoptic_to_instances,
    convert_panoptic_to_semantic,
    encode_panoptic_ids,
    read_panoptic_png,
)

ALLOWED_EVALUATORS = {"coco_panoptic_seg", "coco", "sem_seg", "ytvis", "vps", "davis", "coco_sam"}
PANOPTIC_LIKE = {"coco_panoptic_seg", "vps", "coco_sam"}

OMG_NAMES = [
    "omg_shapes_train_panoptic", "omg_shapes_val_panoptic", "omg_shapes_train_instance",
    "omg_shapes_val_instance", "omg_shapes_train_sem_seg", "omg_shapes_val_sem_seg",
    "omg_shapes_video_train_ytvis", "omg_shapes_video_val_ytvis", "omg_shapes_video_train_vps",
    "omg_shapes_video_val_vps", "omg_shapes_video_train_davis", "omg_shapes_video_val_davis",
    "omg_shapes_train_prompt", "omg_shapes_val_prompt", "omg_shapes_video_val_prompt_vos_point",
    "omg_shapes_video_val_prompt_vos_scribble",
]
EXPECTED_NAMES = [
    "coco_2017_train_panoptic_with_sem_seg", "coco_2017_val_panoptic_with_sem_seg",
    "coco_2017_train", "coco_2017_val", "coco_2017_train_sam", "coco_2017_val_sam",
    "ade20k_panoptic_train", "ade20k_panoptic_val",
    "ade20k_sem_seg_train", "ade20k_sem_seg_val", "cityscapes_fine_panoptic_train",
    "cityscapes_fine_panoptic_val", "vipseg_train", "vipseg_val", "ytvis_2019_train",
    "ytvis_2019_val", "ytvis_2021_train", "ytvis_2021_val", "davis_2017_train", "davis_2017_val",
] + OMG_NAMES


def _prefix():
    return f"t{uuid.uuid4().hex[:8]}_"


def _write_jpg(path, h, w, value=128):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)


def _write_png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def check_metadata(name):
    """The metadata contract of docs/ARCHITECTURE.md; returns the Metadata."""
    m = MetadataCatalog.get(name)
    et = m.evaluator_type
    assert et in ALLOWED_EVALUATORS, (name, et)
    if et in PANOPTIC_LIKE or et == "sem_seg":
        stuff = m.stuff_classes
        k = len(stuff)
        assert k > 0 and len(m.stuff_colors) == k
        assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in m.stuff_colors)
        assert m.ignore_label == 255
        smap = m.stuff_dataset_id_to_contiguous_id
        assert sorted(smap.values()) == list(range(k)), name  # all classes, contiguous 0..K-1
        if hasattr(m, "thing_dataset_id_to_contiguous_id"):
            tmap = m.thing_dataset_id_to_contiguous_id
            assert set(tmap.items()) <= set(smap.items()), name  # things: subset, same ids
            assert list(m.thing_classes) == [stuff[i] for i in sorted(tmap.values())], name
            assert len(m.thing_colors) == len(m.thing_classes)
        if et in PANOPTIC_LIKE:
            assert m.label_divisor == 1000
            assert m.panoptic_root and m.panoptic_json and m.image_root
            assert len(m.thing_classes) > 0
    elif et in ("coco", "ytvis"):
        tmap = m.thing_dataset_id_to_contiguous_id
        assert sorted(tmap.values()) == list(range(len(m.thing_classes)))
        assert len(m.thing_colors) == len(m.thing_classes)
        assert m.json_file and m.image_root
    else:  # davis
        assert m.thing_classes == ["object"] and m.image_root
    if et == "coco_panoptic_seg" and not name.startswith("cityscapes"):
        assert m.json_file and m.sem_seg_root, name
    return m


# ------------------------------------------------------------------ names and metadata
def test_every_expected_name_is_registered():
    registered = set(DatasetCatalog.list())
    missing = [n for n in EXPECTED_NAMES if n not in registered]
    assert not missing


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_metadata_is_complete_and_consistent(name):
    check_metadata(name)


def test_category_facts():
    coco = MetadataCatalog.get("coco_2017_val_panoptic_with_sem_seg")
    assert len(coco.stuff_classes) == 133 and len(coco.thing_classes) == 80
    assert coco.stuff_classes[0] == "person" and coco.thing_dataset_id_to_contiguous_id[90] == 79
    assert coco.stuff_dataset_id_to_contiguous_id[200] == 132
    assert coco.thing_classes == MetadataCatalog.get("coco_2017_val").thing_classes
    ade = MetadataCatalog.get("ade20k_panoptic_val")
    assert len(ade.stuff_classes) == 150 and len(ade.thing_classes) == 100
    assert ade.stuff_classes == MetadataCatalog.get("ade20k_sem_seg_val").stuff_classes
    assert 12 in ade.thing_dataset_id_to_contiguous_id  # person
    assert 0 not in ade.thing_dataset_id_to_contiguous_id  # wall
    vip = MetadataCatalog.get("vipseg_val")
    assert len(vip.stuff_classes) == 124 and len(vip.thing_classes) == 58
    assert vip.stuff_classes[60] == "person" and vip.thing_dataset_id_to_contiguous_id[60] == 60
    assert vip.stuff_classes[44] == "parasol, umbrella"
    y19, y21 = MetadataCatalog.get("ytvis_2019_val"), MetadataCatalog.get("ytvis_2021_val")
    assert len(y19.thing_classes) == len(y21.thing_classes) == 40
    assert y19.thing_classes[0] == "person" and y21.thing_classes[25] == "person"
    assert "sedan" in y19.thing_classes and "sedan" not in y21.thing_classes
    assert "squirrel" in y21.thing_classes and "giant panda" in y21.thing_classes
    city = MetadataCatalog.get("cityscapes_fine_panoptic_val")
    assert len(city.stuff_classes) == 19 and len(city.thing_classes) == 8
    assert city.thing_dataset_id_to_contiguous_id[24] == 11  # person -> trainId 11
    assert city.cityscapes_evaluator_type == "cityscapes_panoptic_seg"
    assert len(MetadataCatalog.get("ade20k_sem_seg_val").stuff_colors) == 150


def test_default_roots_follow_detectron2_datasets():
    root = get_datasets_root()
    assert root == os.path.expanduser(os.environ.get("DETECTRON2_DATASETS", "datasets"))
    m = MetadataCatalog.get("coco_2017_val_panoptic_with_sem_seg")
    assert m.panoptic_json == os.path.join(root, "coco/annotations/panoptic_val2017.json")
    assert m.sem_seg_root == os.path.join(root, "coco/panoptic_semseg_val2017")
    assert m.json_file == MetadataCatalog.get("coco_2017_val").json_file
    assert MetadataCatalog.get("omg_shapes_val_panoptic").image_root == os.path.join(
        root, "omg_shapes", "images", "val")
    assert MetadataCatalog.get("vipseg_val").panoptic_json == os.path.join(
        root, "VIPSeg", "VIPSeg_720P", "panoptic_gt_VIPSeg_val.json")


def test_existing_names_are_never_re_registered(tmp_path):
    before = MetadataCatalog.get("coco_2017_val_panoptic_with_sem_seg").panoptic_json
    loader = DatasetCatalog["coco_2017_val_panoptic_with_sem_seg"]
    register_all_coco_panoptic(str(tmp_path))  # same names, other root: must be a no-op
    assert MetadataCatalog.get("coco_2017_val_panoptic_with_sem_seg").panoptic_json == before
    assert DatasetCatalog["coco_2017_val_panoptic_with_sem_seg"] is loader
    D.register_all(str(tmp_path))  # the whole set again: still no error, nothing replaced
    assert MetadataCatalog.get("coco_2017_val_panoptic_with_sem_seg").panoptic_json == before


@pytest.mark.parametrize(
    "name, fragment, script",
    [
        ("coco_2017_val_panoptic_with_sem_seg", "panoptic_val2017.json", None),
        ("ade20k_panoptic_val", "ade20k_panoptic_val.json", "prepare_ade20k_pan_seg.py"),
        ("vipseg_val", "panoptic_gt_VIPSeg_val.json", "prepare_vipseg.py"),
        ("ytvis_2021_val", "valid.json", None),
        ("davis_2017_val", "val.txt", None),
        ("coco_2017_val_sam", "panoptic_val2017.json", None),
    ],
)
def test_missing_data_is_a_clear_error(name, fragment, script):
    with pytest.raises(FileNotFoundError) as e:
        DatasetCatalog.get(name)
    msg = str(e.value)
    assert fragment in msg and "datasets/README.md" in msg
    if script:
        assert script in msg


# -------------------------------------------------------------------- the real COCO sample
def _check_panoptic_record(rec, meta):
    for key in ("file_name", "image_id", "pan_seg_file_name", "segments_info",
                "sem_seg_file_name", "height", "width"):
        assert key in rec, key
    assert os.path.isfile(rec["file_name"]) and os.path.isfile(rec["pan_seg_file_name"])
    k = len(meta.stuff_classes)
    thing_ids = set(meta.thing_dataset_id_to_contiguous_id.values())
    for s in rec["segments_info"]:
        for key in ("id", "category_id", "isthing", "iscrowd", "area", "bbox"):
            assert key in s, key
        assert 0 <= s["category_id"] < k
        assert s["isthing"] == (s["category_id"] in thing_ids)


def _check_semantic_matches_panoptic(rec):
    pan = read_panoptic_png(rec["pan_seg_file_name"])
    sem = np.asarray(Image.open(rec["sem_seg_file_name"]))
    assert sem.shape == pan.shape == (rec["height"], rec["width"])
    covered = np.zeros(pan.shape, bool)
    for s in rec["segments_info"]:
        m = pan == s["id"]
        assert m.sum() == s["area"]
        assert (sem[m] == s["category_id"]).all()
        covered |= m
    assert (sem[~covered] == 255).all()
    return covered


def test_coco_sample_loads_with_semantic_and_instances(coco_sample, coco_sample_dir):
    meta = MetadataCatalog.get(coco_sample)
    with open(os.path.join(coco_sample_dir, "panoptic_coco_categories.json")) as f:
        cats = json.load(f)
    assert meta.stuff_classes == [c["name"] for c in cats]  # the 133 COCO classes
    assert meta.thing_classes == [c["name"] for c in cats if c["isthing"]]
    records = DatasetCatalog.get(coco_sample)
    assert len(records) == 2
    assert {r["image_id"] for r in records} == {142238, 439180}
    n_things = 0
    for rec in records:
        _check_panoptic_record(rec, meta)
        covered = _check_semantic_matches_panoptic(rec)
        assert covered.any() and (~covered).any()  # some labelled and some void pixels
        n_things += sum(s["isthing"] for s in rec["segments_info"])
    assert any(s["iscrowd"] for r in records for s in r["segments_info"])

    from pycocotools import mask as mask_util
    from pycocotools.coco import COCO

    coco = COCO(meta.json_file)
    assert len(coco.getCatIds()) == 80 and len(coco.getAnnIds()) == n_things
    assert any(a["iscrowd"] for a in coco.loadAnns(coco.getAnnIds()))
    rec = records[0]
    pan = read_panoptic_png(rec["pan_seg_file_name"])
    first = next(s for s in rec["segments_info"] if s["isthing"])
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[rec["image_id"]]))
    masks = [mask_util.decode(a["segmentation"]).astype(bool) for a in anns]
    assert any((m == (pan == first["id"])).all() for m in masks)


def test_coco_sample_registration_reads_only_the_given_paths(coco_sample_dir, tmp_path):
    """Registration records explicit paths and derives nothing: without the prepared files the
    load fails naming the missing folder and the script that makes it."""
    name = _prefix() + "coco_panoptic_sample"
    assert register_coco_panoptic_sample(name, coco_sample_dir, str(tmp_path / "derived"))
    meta = MetadataCatalog.get(name)
    assert meta.sem_seg_root == str(tmp_path / "derived" / "panoptic_semseg")
    assert meta.json_file == str(tmp_path / "derived" / "instances.json")
    assert meta.image_root == os.path.join(coco_sample_dir, "input_images")
    with pytest.raises(FileNotFoundError,
                       match=r"panoptic_semseg.*prepare_coco_panoptic_sample\.py"):
        DatasetCatalog.get(name)
    assert not (tmp_path / "derived").exists()


# ------------------------------------------------- COCO / COCO-SAM from the sample's files
@pytest.fixture(scope="module")
def coco_root(tmp_path_factory, coco_sample_dir):
    """coco/ (val split only) built from the real sample files, as the README lays it out."""
    root = tmp_path_factory.mktemp("coco_root")
    coco = root / "coco"
    shutil.copytree(os.path.join(coco_sample_dir, "input_images"), coco / "val2017")
    shutil.copytree(os.path.join(coco_sample_dir, "panoptic_examples"), coco / "panoptic_val2017")
    (coco / "annotations").mkdir()
    with open(os.path.join(coco_sample_dir, "panoptic_examples.json")) as f:
        data = json.load(f)
    # a degenerate segment (box narrower than a pixel) that COCO-SAM must drop
    data["annotations"][0]["segments_info"][0]["bbox"][2] = 0
    with open(coco / "annotations" / "panoptic_val2017.json", "w") as f:
        json.dump(data, f)
    pan_json, pan_root = str(coco / "annotations" / "panoptic_val2017.json"), str(
        coco / "panoptic_val2017")
    id_map = get_coco_panoptic_metadata()["stuff_dataset_id_to_contiguous_id"]
    convert_panoptic_to_semantic(pan_json, pan_root, str(coco / "panoptic_semseg_val2017"),
                                 id_map, progress=False)
    convert_panoptic_to_instances(pan_json, pan_root,
                                  str(coco / "annotations" / "instances_val2017.json"),
                                  progress=False)
    return str(root), data


def test_coco_panoptic_with_sem_seg_registration(coco_root):
    root, data = coco_root
    prefix = _prefix()
    names = register_all_coco_panoptic(root, prefix=prefix)
    assert names == [f"{prefix}coco_2017_train_panoptic_with_sem_seg",
                     f"{prefix}coco_2017_val_panoptic_with_sem_seg"]
    meta = check_metadata(names[1])
    records = DatasetCatalog.get(names[1])
    assert len(records) == 2
    for rec in records:
        _check_panoptic_record(rec, meta)
        _check_semantic_matches_panoptic(rec)
    from pycocotools.coco import COCO

    assert len(COCO(meta.json_file).getImgIds()) == 2
    with pytest.raises(FileNotFoundError, match="panoptic_train2017.json"):
        DatasetCatalog.get(names[0])


def test_coco_panoptic_unknown_category_is_reported(coco_root, tmp_path):
    root, data = coco_root
    bad_root = tmp_path / "bad"
    shutil.copytree(os.path.join(root, "coco"), bad_root / "coco")
    bad = json.loads(json.dumps(data))
    bad["annotations"][1]["segments_info"][0]["category_id"] = 4242
    with open(bad_root / "coco" / "annotations" / "panoptic_val2017.json", "w") as f:
        json.dump(bad, f)
    prefix = _prefix()
    register_all_coco_panoptic(str(bad_root), prefix=prefix)
    with pytest.raises(ValueError, match=r"panoptic_val2017\.json.*4242"):
        DatasetCatalog.get(f"{prefix}coco_2017_val_panoptic_with_sem_seg")


def test_coco_sam_registration(coco_root):
    root, data = coco_root
    prefix = _prefix()
    names = register_all_coco_sam(root, prefix=prefix)
    meta = check_metadata(names[1])
    assert meta.evaluator_type == "coco_sam" and meta.class_agnostic
    records = DatasetCatalog.get(names[1])
    expected = sum(
        1 for a in data["annotations"] for s in a["segments_info"]
        if not s["iscrowd"] and s["area"] > 0 and s["bbox"][2] >= 1 and s["bbox"][3] >= 1
    )
    segs = [s for r in records for s in r["segments_info"]]
    assert len(segs) == expected
    assert not any(s["iscrowd"] for s in segs)
    assert any(s["isthing"] for s in segs) and any(not s["isthing"] for s in segs)
    dropped = data["annotations"][0]["segments_info"][0]["id"]
    assert dropped not in {s["id"] for s in records[0]["segments_info"]}


# ------------------------------------------------------------------------ ADE20K panoptic
def test_ade20k_panoptic_registration(tmp_path):
    base = tmp_path / "ADEChallengeData2016"
    h, w = 12, 16
    sem = np.zeros((h, w), np.uint8)
    sem[:6] = 1  # wall (stuff)
    sem[6:, :8] = 13  # person (thing)
    sem[6:, 8:] = 3  # sky (stuff)
    inst = np.zeros((h, w, 3), np.uint8)
    inst[6:, :4] = (4, 1, 0)  # Instance100 class 4 = SceneParse 13 (person), instance 1
    inst[6:, 4:8] = (4, 2, 0)
    for split, d in (("train", "training"), ("val", "validation")):
        _write_jpg(str(base / "images" / d / f"ADE_{split}_00000001.jpg"), h, w)
        _write_png(str(base / "annotations" / d / f"ADE_{split}_00000001.png"), sem)
        _write_png(str(base / "annotations_instance" / d / f"ADE_{split}_00000001.png"), inst)
        convert_ade20k_sem_seg(str(base / "annotations" / d),
                               str(base / "annotations_detectron2" / d), progress=False)
        convert_ade20k_panoptic(
            str(base / "images" / d), str(base / "annotations" / d),
            str(base / "annotations_instance" / d), str(base / f"ade20k_panoptic_{split}"),
            str(base / f"ade20k_panoptic_{split}.json"), progress=False)
    prefix = _prefix()
    names = D.register_all_ade20k_panoptic(str(tmp_path), prefix=prefix)
    meta = check_metadata(names[1])
    (rec,) = DatasetCatalog.get(names[1])
    _check_panoptic_record(rec, meta)
    assert rec["image_id"] == "ADE_val_00000001"
    cats = sorted((meta.stuff_classes[s["category_id"]], s["isthing"])
                  for s in rec["segments_info"])
    assert cats == [("person", True), ("person", True), ("sky", False), ("wall", False)]
    _check_semantic_matches_panoptic(rec)  # annotations_detectron2 agrees with the panoptic PNG


# ---------------------------------------------------------------------------- YouTube-VIS
def _ytvis_tree(root, year, categories_used):
    base = root / f"ytvis_{year}"
    vids, anns = [], []
    h, w = 8, 10
    for split, json_name, images in (("train", "train.json", "train/JPEGImages"),
                                     ("val", "valid.json", "valid/JPEGImages")):
        files = [f"abc{split}/00000.jpg", f"abc{split}/00005.jpg"]
        for f in files:
            _write_jpg(str(base / images / f), h, w)
        mask = np.zeros((h, w), np.uint8)
        mask[2:5, 3:7] = 1
        counts = []  # uncompressed RLE (column-major runs, starting with 0s), as YTVIS stores it
        run, cur = 0, 0
        for v in mask.flatten(order="F"):
            if v != cur:
                counts.append(run)
                run, cur = 0, v
            run += 1
        counts.append(run)
        vids = [{"id": 7, "file_names": files, "height": h, "width": w, "length": 2}]
        anns = [
            {"id": 3, "video_id": 7, "category_id": categories_used[0], "iscrowd": 0,
             "segmentations": [{"size": [h, w], "counts": counts}, None],
             "bboxes": [[3.0, 2.0, 4.0, 3.0], None], "areas": [12, None]},
            {"id": 4, "video_id": 7, "category_id": categories_used[1], "iscrowd": 0,
             "segmentations": [None, [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 5.0]]],
             "bboxes": [None, [1.0, 1.0, 4.0, 4.0]], "areas": [None, 16]},
        ]
        data = {"videos": vids, "categories": [{"id": i, "name": f"c{i}"} for i in range(1, 41)],
                "annotations": anns if split == "train" else None}
        with open(base / json_name, "w") as f:
            json.dump(data, f)
    return base


@pytest.mark.parametrize("year, cats, expected", [(2019, (1, 6), ("person", "sedan")),
                                                   (2021, (26, 5), ("person", "car"))])
def test_ytvis_registration(tmp_path, year, cats, expected):
    _ytvis_tree(tmp_path, year, cats)
    prefix = _prefix()
    register = D.register_all_ytvis_2019 if year == 2019 else D.register_all_ytvis_2021
    train, val = register(str(tmp_path), prefix=prefix)
    meta = check_metadata(train)
    (rec,) = DatasetCatalog.get(train)
    assert rec["video_id"] == 7 and rec["length"] == 2 and (rec["height"], rec["width"]) == (8, 10)
    assert rec["file_names"][1].endswith(os.path.join("abctrain", "00005.jpg"))
    f0, f1 = rec["annotations"]
    assert [o["id"] for o in f0] == [3] and [o["id"] for o in f1] == [4]
    assert meta.thing_classes[f0[0]["category_id"]] == expected[0]
    assert meta.thing_classes[f1[0]["category_id"]] == expected[1]
    assert isinstance(f0[0]["segmentation"]["counts"], str)  # compressed RLE
    from pycocotools import mask as mask_util

    assert mask_util.decode(f0[0]["segmentation"]).sum() == 12
    assert f0[0]["bbox"] == [3.0, 2.0, 4.0, 3.0] and f0[0]["iscrowd"] == 0
    assert isinstance(f1[0]["segmentation"], list)
    (vrec,) = DatasetCatalog.get(val)  # the official valid split has no annotations
    assert "annotations" not in vrec and vrec["length"] == 2


def test_ytvis_unknown_category_is_reported(tmp_path):
    base = _ytvis_tree(tmp_path, 2019, (1, 99))
    with pytest.raises(ValueError, match=r"train\.json.*99"):
        D.load_ytvis_json(str(base / "train.json"), str(base / "train/JPEGImages"),
                          "ytvis_2019_train")


# ---------------------------------------------------------------------------------- VIPSeg
def test_vipseg_registration(tmp_path):
    base = tmp_path / "VIPSeg" / "VIPSeg_720P"
    h, w = 6, 9
    videos, anns = [], []
    for vid in ("12_abc", "13_def"):
        images, frames = [], []
        for t, stem in enumerate(("00000001", "00000006")):
            _write_jpg(str(base / "images" / vid / f"{stem}.jpg"), h, w)
            ids = np.zeros((h, w), np.int64)
            ids[:3] = 1  # wall (stuff), segment id 1
            ids[3:, t:t + 3] = 6101  # person instance 1
            _write_png(str(base / "panomasksRGB" / vid / f"{stem}.png"), encode_panoptic_ids(ids))
            images.append({"id": stem, "file_name": f"{stem}.png", "height": h, "width": w})
            frames.append({"image_id": stem, "file_name": f"{stem}.png", "segments_info": [
                {"id": 1, "category_id": 0, "iscrowd": 0, "area": 27},
                {"id": 6101, "category_id": 60, "iscrowd": 0, "area": 9}]})
        videos.append({"video_id": vid, "images": images})
        anns.append({"video_id": vid, "annotations": frames})
    cats = [{"id": i, "name": f"c{i}", "isthing": 0} for i in range(124)]
    with open(base / "panoptic_gt_VIPSeg_val.json", "w") as f:
        json.dump({"videos": videos, "annotations": anns, "categories": cats}, f)
    prefix = _prefix()
    train, val = D.register_all_vipseg(str(tmp_path), prefix=prefix)
    meta = check_metadata(val)
    records = DatasetCatalog.get(val)
    assert [r["video_id"] for r in records] == ["12_abc", "13_def"]
    rec = records[0]
    assert rec["length"] == 2 and (rec["height"], rec["width"]) == (h, w)
    assert rec["file_names"][1].endswith(os.path.join("images", "12_abc", "00000006.jpg"))
    assert rec["pan_seg_file_names"][0].endswith(
        os.path.join("panomasksRGB", "12_abc", "00000001.png"))
    for segs in rec["segments_infos"]:
        by_id = {s["id"]: s for s in segs}
        assert meta.stuff_classes[by_id[6101]["category_id"]] == "person"
        assert by_id[6101]["isthing"] and not by_id[1]["isthing"]
    with pytest.raises(FileNotFoundError, match="panoptic_gt_VIPSeg_train.json"):
        DatasetCatalog.get(train)


# ----------------------------------------------------------------------------------- DAVIS
def test_davis_registration(tmp_path):
    base = tmp_path / "DAVIS"
    for vid, n in (("bear", 3), ("dog", 2)):
        for t in range(n):
            _write_jpg(str(base / "JPEGImages" / "480p" / vid / f"{t:05d}.jpg"), 6, 10)
            mask = np.zeros((6, 10), np.uint8)
            mask[1:3, t:t + 2] = 1
            img = Image.fromarray(mask, mode="P")
            img.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
            os.makedirs(base / "Annotations" / "480p" / vid, exist_ok=True)
            img.save(base / "Annotations" / "480p" / vid / f"{t:05d}.png")
    (base / "ImageSets" / "2017").mkdir(parents=True)
    (base / "ImageSets" / "2017" / "val.txt").write_text("bear\ndog\n")
    prefix = _prefix()
    train, val = D.register_all_davis(str(tmp_path), prefix=prefix)
    check_metadata(val)
    records = DatasetCatalog.get(val)
    assert [r["video_id"] for r in records] == ["bear", "dog"]
    bear = records[0]
    assert bear["length"] == 3 and (bear["height"], bear["width"]) == (6, 10)
    assert [os.path.basename(p) for p in bear["mask_file_names"]] == [
        "00000.png", "00001.png", "00002.png"]
    assert np.asarray(Image.open(bear["mask_file_names"][1]))[1, 1] == 1
    with pytest.raises(FileNotFoundError, match="train.txt"):
        DatasetCatalog.get(train)


# --------------------------------------------------------------------- synthetic benchmark
@pytest.fixture(scope="module")
def tiny_omg_root(tmp_path_factory):
    from omgseg.synthetic import generate_omg_shapes

    root = tmp_path_factory.mktemp("omg_root")
    generate_omg_shapes(str(root / "omg_shapes"), seed=3, num_train_images=2, num_val_images=2,
                        num_train_videos=1, num_val_videos=1, image_size=(48, 64),
                        video_size=(40, 48), min_frames=3, max_frames=3, progress=False)
    return str(root)


def test_synthetic_splits_load_through_the_real_loaders(tiny_omg_root):
    from omgseg.data.datasets.omg_shapes_categories import OMG_SHAPES_CATEGORIES

    prefix = _prefix()
    names = D.register_all_omg_shapes(tiny_omg_root, prefix=prefix)
    assert sorted(names) == sorted(prefix + x for x in OMG_NAMES)
    get = {n[len(prefix):]: DatasetCatalog.get(n) for n in names}
    for n in names:
        check_metadata(n)
        # Every registered loader stamps its name (it selects the vocabulary of a sample).
        assert {r["dataset_name"] for r in get[n[len(prefix):]]} == {n}
    pan_meta = MetadataCatalog.get(prefix + "omg_shapes_val_panoptic")
    assert pan_meta.stuff_classes == [c["name"] for c in OMG_SHAPES_CATEGORIES]
    assert pan_meta.thing_classes == [c["name"] for c in OMG_SHAPES_CATEGORIES if c["isthing"]]
    for split in ("train", "val"):
        pan = get[f"omg_shapes_{split}_panoptic"]
        assert len(pan) == 2
        for rec in pan:
            _check_panoptic_record(rec, pan_meta)
            _check_semantic_matches_panoptic(rec)
        inst = get[f"omg_shapes_{split}_instance"]
        things = sum(s["isthing"] for r in pan for s in r["segments_info"])
        assert sum(len(r["annotations"]) for r in inst) == things
        assert all(0 <= a["category_id"] < 8 for r in inst for a in r["annotations"])
        assert len(get[f"omg_shapes_{split}_sem_seg"]) == 2
        (yt,) = get[f"omg_shapes_video_{split}_ytvis"]
        assert yt["length"] == 3 and len(yt["annotations"]) == 3
        (vps,) = get[f"omg_shapes_video_{split}_vps"]
        assert vps["length"] == 3 and all(os.path.isfile(p) for p in vps["pan_seg_file_names"])
        tracks = {o["id"] for frame in yt["annotations"] for o in frame}
        vps_things = {s["id"] for segs in vps["segments_infos"] for s in segs if s["isthing"]}
        assert len(tracks) == len(vps_things) > 0
        for t, segs in enumerate(vps["segments_infos"]):
            ids = read_panoptic_png(vps["pan_seg_file_names"][t])
            assert {s["id"] for s in segs} == set(np.unique(ids)) - {0}
        (dv,) = get[f"omg_shapes_video_{split}_davis"]
        assert dv["length"] == 3 and all(os.path.isfile(p) for p in dv["mask_file_names"])


def test_coco_instances_unknown_category_is_reported(tmp_path):
    from omgseg.data.datasets.omg_shapes import load_coco_instances

    _write_jpg(str(tmp_path / "img" / "a.jpg"), 4, 4)
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 4, "width": 4}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 99, "iscrowd": 0,
                         "bbox": [0, 0, 2, 2], "area": 4,
                         "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}],
        "categories": [{"id": 1, "name": "circle"}],
    }
    (tmp_path / "inst.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"inst\.json.*99"):
        load_coco_instances(str(tmp_path / "inst.json"), str(tmp_path / "img"), _prefix() + "x")
    with pytest.raises(FileNotFoundError, match=r"missing\.json.*datasets/README\.md"):
        load_coco_instances(str(tmp_path / "missing.json"), str(tmp_path / "img"), _prefix())
