"""OMG-Shapes generator: determinism, format validity and cross-format consistency, CLI."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from omgseg.synthetic import (CONTIGUOUS_ID, OMG_SHAPES_CATEGORIES, THING_CATEGORIES,
                              generate_omg_shapes, prepare_omg_shapes, read_meta)
from omgseg.synthetic import generate as generate_module
from omgseg.synthetic.io_utils import rle_record, segment_record

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = REPO_ROOT / "datasets" / "prepare_synthetic.py"
SPLITS = ("train", "val")
TINY = dict(seed=0, num_train_images=4, num_val_images=3, num_train_videos=2, num_val_videos=2,
            image_size=(96, 128), video_size=(96, 128), min_frames=8, max_frames=10)
CAT_BY_ID = {c["id"]: c for c in OMG_SHAPES_CATEGORIES}


def _generate(root: Path, **overrides) -> dict:
    return generate_omg_shapes(root, **dict(TINY, **overrides), progress=False)


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("omg_shapes")
    root, twin, other = base / "a", base / "b", base / "c"
    summary = _generate(root)
    _generate(twin)
    _generate(other, seed=1)
    return SimpleNamespace(base=base, root=root, twin=twin, other=other, summary=summary)


# ----------------------------------------------------------------------------- helpers
def _json(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def _ids(path: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def _bbox(mask: np.ndarray) -> list:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1)]


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _check_segments(ids: np.ndarray, segments_info: list, where: str) -> None:
    """PNG ids == JSON ids, areas / boxes recounted, valid categories, no unlabelled pixel."""
    listed = [s["id"] for s in segments_info]
    assert len(listed) == len(set(listed)), where
    assert set(np.unique(ids).tolist()) == set(listed), where
    assert 0 not in listed, where
    for s in segments_info:
        mask = ids == s["id"]
        assert s["category_id"] in CAT_BY_ID, where
        assert s["iscrowd"] == 0
        assert s["area"] == int(mask.sum()), where
        assert s["bbox"] == _bbox(mask), where
    stuff = [s["category_id"] for s in segments_info if not CAT_BY_ID[s["category_id"]]["isthing"]]
    assert len(stuff) == len(set(stuff)), f"{where}: a stuff class split into several segments"


# ----------------------------------------------------------------------------- layout, determinism
def test_layout_counts_and_meta(gen):
    root = gen.root
    meta = _json(root / "meta.json")
    assert meta["parameters"]["seed"] == 0
    assert meta["parameters"]["image_size"] == [96, 128]
    assert meta["counts"] == gen.summary
    for split, n_img, n_vid in (("train", 4, 2), ("val", 3, 2)):
        assert sorted(p.name for p in (root / "images" / split).iterdir()) == [
            f"{i:06d}.jpg" for i in range(n_img)]
        assert len(list((root / f"panoptic_{split}").glob("*.png"))) == n_img
        assert len(list((root / f"panoptic_semseg_{split}").glob("*.png"))) == n_img
        assert len(_json(root / f"panoptic_{split}.json")["annotations"]) == n_img
        assert len(_json(root / f"instances_{split}.json")["images"]) == n_img
        assert len(_json(root / "videos" / f"ytvis_{split}.json")["videos"]) == n_vid
        assert len(_json(root / "videos" / f"panoptic_video_{split}.json")["videos"]) == n_vid
        c = gen.summary[split]
        assert (c["images"], c["videos"]) == (n_img, n_vid)
        assert c["instances"] == len(_json(root / f"instances_{split}.json")["annotations"])
        assert c["tracks"] == len(_json(root / "videos" / f"ytvis_{split}.json")["annotations"])
        with Image.open(root / "images" / split / "000000.jpg") as im:
            assert im.size == (128, 96) and im.mode == "RGB"
    # nothing left behind next to the dataset by the atomic write
    assert sorted(p.name for p in gen.base.iterdir()) == ["a", "b", "c"]


def test_same_seed_is_byte_identical_other_seed_differs(gen):
    a, b, c = _files(gen.root), _files(gen.twin), _files(gen.other)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    images = [k for k in a if k.startswith("images/") and k in c]
    assert images and all(a[k] != c[k] for k in images)
    assert a["panoptic_train.json"] != c["panoptic_train.json"]
    assert a["videos/ytvis_train.json"] != c.get("videos/ytvis_train.json")


def test_categories_match_categories_py(gen):
    root = gen.root
    assert _json(root / "meta.json")["categories"] == OMG_SHAPES_CATEGORIES
    for split in SPLITS:
        assert _json(root / f"panoptic_{split}.json")["categories"] == OMG_SHAPES_CATEGORIES
        assert _json(root / f"instances_{split}.json")["categories"] == THING_CATEGORIES
        assert _json(root / "videos" / f"ytvis_{split}.json")["categories"] == THING_CATEGORIES
        vps = _json(root / "videos" / f"panoptic_video_{split}.json")
        assert vps["categories"] == OMG_SHAPES_CATEGORIES
    assert len(THING_CATEGORIES) >= 6 and len(OMG_SHAPES_CATEGORIES) - len(THING_CATEGORIES) >= 3


# ----------------------------------------------------------------------------- images
def test_panoptic_png_matches_json(gen):
    seen_cats = set()
    for split in SPLITS:
        pan = _json(gen.root / f"panoptic_{split}.json")
        assert [im["id"] for im in pan["images"]] == [a["image_id"] for a in pan["annotations"]]
        for im, ann in zip(pan["images"], pan["annotations"]):
            assert Path(im["file_name"]).stem == Path(ann["file_name"]).stem
            ids = _ids(gen.root / f"panoptic_{split}" / ann["file_name"])
            assert ids.shape == (im["height"], im["width"])
            _check_segments(ids, ann["segments_info"], f"{split}/{ann['file_name']}")
            things = [s for s in ann["segments_info"] if CAT_BY_ID[s["category_id"]]["isthing"]]
            assert 1 <= len(things) <= 8
            assert all(s["area"] >= 40 for s in things)  # small instances were dropped
            seen_cats.update(s["category_id"] for s in ann["segments_info"])
    assert any(not CAT_BY_ID[c]["isthing"] for c in seen_cats)


def test_pixels_show_the_annotated_shapes(gen):
    """A thing's pixels (away from its rim) carry its class colour: image and masks align."""
    checked = 0
    for split in SPLITS:
        pan = _json(gen.root / f"panoptic_{split}.json")
        for ann in pan["annotations"]:
            ids = _ids(gen.root / f"panoptic_{split}" / ann["file_name"])
            image = np.asarray(Image.open(
                gen.root / "images" / split / ann["file_name"].replace(".png", ".jpg")))
            for s in ann["segments_info"]:
                cat = CAT_BY_ID[s["category_id"]]
                if not cat["isthing"]:
                    continue
                core = cv2.erode((ids == s["id"]).astype(np.uint8), np.ones((5, 5), np.uint8))
                if core.sum() < 10:
                    continue
                median = np.median(image[core.astype(bool)], axis=0)
                assert np.abs(median - np.asarray(cat["color"])).max() < 60, (cat["name"], median)
                checked += 1
    assert checked >= 5


def test_instances_json_matches_panoptic(gen):
    for split in SPLITS:
        inst_file = gen.root / f"instances_{split}.json"
        raw = _json(inst_file)
        coco = COCO(str(inst_file))
        pan = _json(gen.root / f"panoptic_{split}.json")
        assert sorted(coco.getImgIds()) == sorted(a["image_id"] for a in pan["annotations"])
        for ann in pan["annotations"]:
            ids = _ids(gen.root / f"panoptic_{split}" / ann["file_name"])
            things = {s["id"]: s for s in ann["segments_info"]
                      if CAT_BY_ID[s["category_id"]]["isthing"]}
            inst = coco.loadAnns(coco.getAnnIds(imgIds=[ann["image_id"]]))
            assert len(inst) == len(things)
            unmatched = set(things)
            for a in inst:
                assert isinstance(a["segmentation"]["counts"], str)
                assert a["iscrowd"] == 0
                m = coco.annToMask(a).astype(bool)
                assert a["area"] == int(m.sum()) and a["bbox"] == _bbox(m)
                hits = [i for i in unmatched if np.array_equal(ids == i, m)]
                assert len(hits) == 1, f"instance {a['id']} matches no panoptic segment"
                assert things[hits[0]]["category_id"] == a["category_id"]
                unmatched.discard(hits[0])
        assert len({a["id"] for a in raw["annotations"]}) == len(raw["annotations"])


def test_panopticapi_gt_vs_gt_is_perfect(gen):
    from panopticapi.evaluation import PQStat, pq_compute_single_core

    categories = {c["id"]: c for c in OMG_SHAPES_CATEGORIES}
    for split in SPLITS:
        pan = _json(gen.root / f"panoptic_{split}.json")
        folder = str(gen.root / f"panoptic_{split}")
        pairs = [(copy.deepcopy(a), copy.deepcopy(a)) for a in pan["annotations"]]
        stat = pq_compute_single_core(0, pairs, folder, folder, categories)
        assert isinstance(stat, PQStat)
        for isthing in (None, True, False):
            res, _ = stat.pq_average(categories, isthing=isthing)
            assert res["n"] > 0
            for key in ("pq", "sq", "rq"):
                assert 100 * res[key] == pytest.approx(100.0), (split, isthing, key, res)


def test_semantic_png_agrees_with_panoptic(gen):
    for split in SPLITS:
        pan = _json(gen.root / f"panoptic_{split}.json")
        for ann in pan["annotations"]:
            ids = _ids(gen.root / f"panoptic_{split}" / ann["file_name"])
            with Image.open(gen.root / f"panoptic_semseg_{split}" / ann["file_name"]) as im:
                assert im.mode == "L"
                sem = np.asarray(im)
            expected = np.full(ids.shape, 255, dtype=np.uint8)
            for s in ann["segments_info"]:
                expected[ids == s["id"]] = CONTIGUOUS_ID[s["category_id"]]
            assert np.array_equal(sem, expected)
            assert sem.max() < len(OMG_SHAPES_CATEGORIES)  # every pixel labelled
    assert CONTIGUOUS_ID[OMG_SHAPES_CATEGORIES[8]["id"]] == 8


# ----------------------------------------------------------------------------- videos
def _load_video_split(root: Path, split: str) -> list:
    """Per video: (ytvis video, ytvis annotations, vps images, vps frame annotations, id maps)."""
    yt = _json(root / "videos" / f"ytvis_{split}.json")
    vps = _json(root / "videos" / f"panoptic_video_{split}.json")
    vps_videos = {v["video_id"]: v for v in vps["videos"]}
    vps_anns = {a["video_id"]: a["annotations"] for a in vps["annotations"]}
    out = []
    for video in yt["videos"]:
        name = video["file_names"][0].split("/")[0]
        anns = sorted((a for a in yt["annotations"] if a["video_id"] == video["id"]),
                      key=lambda a: a["id"])
        frames = vps_anns[name]
        ids = [_ids(root / "videos" / f"panoptic_video_{split}" / name / f["file_name"])
               for f in frames]
        out.append(SimpleNamespace(name=name, video=video, anns=anns,
                                   images=vps_videos[name]["images"], frames=frames, ids=ids))
    return out


def test_video_files_and_lengths(gen):
    root = gen.root
    names = {}
    for split in SPLITS:
        yt = _json(root / "videos" / f"ytvis_{split}.json")
        assert [v["id"] for v in yt["videos"]] == list(range(1, len(yt["videos"]) + 1))
        for v in _load_video_split(root, split):
            n = v.video["length"]
            assert TINY["min_frames"] <= n <= TINY["max_frames"]
            assert v.video["file_names"] == [f"{v.name}/{t:05d}.jpg" for t in range(n)]
            assert [im["file_name"] for im in v.images] == [f"{t:05d}.jpg" for t in range(n)]
            frame_dir = root / "videos" / "JPEGImages" / split / v.name
            assert sorted(p.name for p in frame_dir.iterdir()) == [f"{t:05d}.jpg" for t in range(n)]
            davis_frames = root / "davis" / "JPEGImages" / "480p" / v.name
            davis_anns = root / "davis" / "Annotations" / "480p" / v.name
            for t in range(n):
                assert (davis_frames / f"{t:05d}.jpg").read_bytes() == (
                    frame_dir / f"{t:05d}.jpg").read_bytes()
                assert (davis_anns / f"{t:05d}.png").is_file()
                with Image.open(frame_dir / f"{t:05d}.jpg") as im:
                    size = (im.height, im.width)
                    assert size == (v.video["height"], v.video["width"]) == (96, 128)
            names.setdefault(split, []).append(v.name)
    for split in SPLITS:
        listed = (root / "davis" / "ImageSets" / "2017" / f"{split}.txt").read_text().split()
        assert listed == names[split]
    assert not set(names["train"]) & set(names["val"])


def test_vps_png_matches_json_and_ids_are_stable(gen):
    for split in SPLITS:
        for v in _load_video_split(gen.root, split):
            category_of = {}
            for t, (frame, ids) in enumerate(zip(v.frames, v.ids)):
                assert frame["image_id"] == v.images[t]["id"]
                _check_segments(ids, frame["segments_info"], f"{v.name}/{t}")
                for s in frame["segments_info"]:
                    assert category_of.setdefault(s["id"], s["category_id"]) == s["category_id"]
                    if CAT_BY_ID[s["category_id"]]["isthing"]:
                        assert s["area"] >= 16  # slivers are removed from the frame


def test_ytvis_vps_davis_agree_frame_by_frame(gen):
    n_objects = 0
    for split in SPLITS:
        for v in _load_video_split(gen.root, split):
            n = v.video["length"]
            thing_ids = {s["id"] for f in v.frames for s in f["segments_info"]
                         if CAT_BY_ID[s["category_id"]]["isthing"]}
            track_segment = []
            for a in v.anns:
                assert len(a["segmentations"]) == len(a["areas"]) == len(a["bboxes"]) == n
                t0 = next(t for t in range(n) if a["segmentations"][t] is not None)
                m0 = mask_utils.decode(a["segmentations"][t0]).astype(bool)
                sid = [i for i in thing_ids if np.array_equal(v.ids[t0] == i, m0)]
                assert len(sid) == 1, f"{v.name}: track {a['id']} matches no VPS segment"
                sid = sid[0]
                track_segment.append(sid)
                for t in range(n):
                    seg = a["segmentations"][t]
                    listed = {s["id"]: s for s in v.frames[t]["segments_info"]}
                    if seg is None:
                        assert sid not in listed
                        assert a["areas"][t] is None and a["bboxes"][t] is None
                        continue
                    m = mask_utils.decode(seg).astype(bool)
                    assert np.array_equal(m, v.ids[t] == sid), (v.name, a["id"], t)
                    assert a["areas"][t] == int(m.sum()) and a["bboxes"][t] == _bbox(m)
                    assert listed[sid]["category_id"] == a["category_id"]
            assert sorted(track_segment) == sorted(thing_ids)  # one track per VPS thing id
            # DAVIS: objects are the tracks visible in frame 0, numbered in track order
            objects = [sid for a, sid in zip(v.anns, track_segment)
                       if a["segmentations"][0] is not None]
            assert objects, f"{v.name}: no object in the first frame"
            n_objects += len(objects)
            for t in range(n):
                with Image.open(gen.root / "davis" / "Annotations" / "480p" / v.name
                                / f"{t:05d}.png") as im:
                    assert im.mode == "P"
                    index = np.asarray(im)
                expected = np.zeros(index.shape, dtype=np.uint8)
                for k, sid in enumerate(objects, start=1):
                    expected[v.ids[t] == sid] = k
                assert np.array_equal(index, expected), (v.name, t)
    assert n_objects == sum(gen.summary[s]["davis_objects"] for s in SPLITS)


def test_objects_move_and_tracks_enter_or_leave(gen):
    displacements, enter_leave = [], 0
    for split in SPLITS:
        for v in _load_video_split(gen.root, split):
            clip_has_enter_leave = False
            for a in v.anns:
                present = [s is not None for s in a["segmentations"]]
                if not present[0] or not present[-1]:
                    clip_has_enter_leave = True
                    enter_leave += 1
                centroids = []
                for seg in a["segmentations"]:
                    if seg is not None:
                        ys, xs = np.nonzero(mask_utils.decode(seg))
                        centroids.append((xs.mean(), ys.mean()))
                if len(centroids) >= 2:
                    steps = np.diff(np.asarray(centroids), axis=0)
                    displacements.append(np.hypot(steps[:, 0], steps[:, 1]).mean())
            assert clip_has_enter_leave, f"{v.name}: no track enters or leaves"
            # the background drifts / things move: consecutive frames differ
            frames = sorted((gen.root / "videos" / "JPEGImages" / split / v.name).iterdir())
            a0 = np.asarray(Image.open(frames[0]), dtype=np.float32)
            a1 = np.asarray(Image.open(frames[-1]), dtype=np.float32)
            assert np.abs(a0 - a1).mean() > 1.0
    assert enter_leave == sum(gen.summary[s]["entering_or_leaving_tracks"] for s in SPLITS)
    assert np.median(displacements) > 1.0, displacements
    assert sum(d > 0.5 for d in displacements) >= 0.75 * len(displacements)


# ----------------------------------------------------------------------------- CLI, atomicity
def _load_cli():
    import prepare_synthetic  # datasets/ is on pytest's pythonpath (setup.cfg)

    return prepare_synthetic


def _cli_args(root: Path, seed: int = 0) -> list:
    return ["--root", str(root), "--seed", str(seed), "--num-train-images", "2",
            "--num-val-images", "1", "--num-train-videos", "1", "--num-val-videos", "1",
            "--image-size", "64", "96", "--video-size", "64", "96", "--min-frames", "8",
            "--max-frames", "8", "--quiet"]


def test_cli_is_idempotent(tmp_path, capsys):
    root = tmp_path / "omg"
    cli = _load_cli()
    assert cli.main(_cli_args(root)) == 0
    out = capsys.readouterr().out
    assert "already generated" not in out and "generated" in out and "train" in out
    meta = read_meta(root)
    assert meta["parameters"]["image_size"] == [64, 96] and meta["counts"]["train"]["images"] == 2
    stamp = {p: os.stat(root / p).st_mtime_ns for p in
             ("meta.json", "images/train/000000.jpg", "panoptic_train.json")}

    # second run as a script, from the repository root
    proc = subprocess.run([sys.executable, str(CLI.relative_to(REPO_ROOT))] + _cli_args(root),
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "already generated" in proc.stdout
    assert {p: os.stat(root / p).st_mtime_ns for p in stamp} == stamp

    # --force and changed parameters regenerate
    assert cli.main(_cli_args(root) + ["--force"]) == 0
    assert "already generated" not in capsys.readouterr().out
    assert os.stat(root / "meta.json").st_mtime_ns != stamp["meta.json"]
    assert cli.main(_cli_args(root, seed=3)) == 0
    assert "already generated" not in capsys.readouterr().out
    assert read_meta(root)["parameters"]["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["omg"]


def test_prepare_keeps_matching_dataset(tmp_path):
    params = dict(TINY, num_train_images=1, num_val_images=1, num_train_videos=0,
                  num_val_videos=0)
    counts, generated = prepare_omg_shapes(tmp_path / "d", progress=False, **params)
    assert generated and counts["train"]["images"] == 1
    counts2, generated2 = prepare_omg_shapes(tmp_path / "d", progress=False, **params)
    assert not generated2 and counts2 == counts
    _, generated3 = prepare_omg_shapes(tmp_path / "d", progress=False, **dict(params, seed=4))
    assert generated3


def test_interrupted_generation_keeps_previous_dataset(tmp_path, monkeypatch):
    root = tmp_path / "omg"
    params = dict(TINY, num_train_images=1, num_val_images=1, num_train_videos=1,
                  num_val_videos=0)
    _generate(root, **params)
    before = _files(root)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C half way

    monkeypatch.setattr(generate_module, "sample_video_clip", boom)
    with pytest.raises(KeyboardInterrupt):
        _generate(root, **dict(params, seed=9))
    assert _files(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["omg"]
    with pytest.raises(KeyboardInterrupt):
        _generate(tmp_path / "fresh", **params)
    assert not (tmp_path / "fresh").exists()


def test_rle_area_and_box_match_a_direct_count():
    """The writers' pycocotools area / box are what counting pixels gives (outputs unchanged)."""
    rng = np.random.default_rng(1)
    masks = [np.ones((4, 7), bool), rng.random((9, 13)) > 0.6, np.zeros((8, 8), bool)]
    masks[-1][3, 5] = True
    for m in masks:
        rec = rle_record(m)
        assert rec["area"] == int(m.sum()) and rec["bbox"] == _bbox(m)
        assert np.array_equal(mask_utils.decode(rec["segmentation"]).astype(bool), m)
        assert isinstance(rec["segmentation"]["counts"], str)
        assert segment_record(m, 5, 2) == {"id": 5, "category_id": 2, "iscrowd": 0,
                                           "area": int(m.sum()), "bbox": _bbox(m)}
        assert all(type(v) is int for v in [rec["area"]] + rec["bbox"])
