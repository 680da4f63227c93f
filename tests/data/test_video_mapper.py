"""Video training clips (frame sampling, one camera, identity-aligned tubes for YouTube-VIS /
VIPSeg / DAVIS), the test-time video input, mixed image + video training, and bad video input."""
import json
import pickle

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from panopticapi.utils import rgb2id
from PIL import Image

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T
from detectron2.structures import BoxMode

from conftest import make_tiny_cfg
from omgseg.config import add_omgseg_config
from omgseg.data.build import MAPPERS, TEST_MAPPERS, build_test_mapper, build_train_mapper
from omgseg.data.dataset_mappers import (
    FrameSampler,
    MultiTaskDatasetMapper,
    PseudoVideoLSJDatasetMapper,
    VideoClipDatasetMapper,
    VideoTestDatasetMapper,
    build_lsj_augmentations,
    record_kind,
)
from omgseg.data.dataset_mappers.frame_sampling import sample_by_interval, sample_in_range
from omgseg.data.datasets.vipseg import load_video_panoptic_json
from omgseg.data.datasets.ytvis import load_ytvis_json
from omgseg.engine import Trainer

H, W = 20, 30


class StubRng:
    """``randint`` returns the queued values (then 0); ``choice`` takes the first k."""

    def __init__(self, *values):
        self.values = list(values)

    def randint(self, n):
        v = self.values.pop(0) if self.values else 0
        assert 0 <= v < n, (v, n)
        return v

    def choice(self, n, size, replace):
        assert not replace
        return np.arange(size)

    def shuffle(self, x):
        x.reverse()


class Fixed:
    """A frame sampler that returns the given indices."""

    def __init__(self, indices):
        self.indices, self.num_frames = list(indices), len(indices)

    def __call__(self, length):
        return list(self.indices)


def clip_mapper(sampler, shared=(), per_frame=()):
    return VideoClipDatasetMapper(frame_sampler=sampler, shared_augmentations=list(shared),
                                  frame_augmentations=list(per_frame), image_format="RGB",
                                  num_classes=3)


def write_image(path, seed=0, h=H, w=W):
    arr = np.random.RandomState(seed).randint(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return str(path)


def box_mask(rows, cols, h=H, w=W):
    m = np.zeros((h, w), bool)
    m[rows, cols] = True
    return m


def ytvis_anno(track, cat, mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return {"id": track, "category_id": cat, "segmentation": rle,
            "bbox": mask_util.toBbox(rle).tolist(), "bbox_mode": BoxMode.XYWH_ABS, "iscrowd": 0}


@pytest.fixture
def ytvis_record(tmp_path):
    """3 frames; track 7 (class 1) in frames 0 and 2, track 9 (class 0) in frame 1 only, a crowd
    annotation in frame 2."""
    m7 = box_mask(slice(2, 6), slice(3, 9))
    m9 = box_mask(slice(10, 15), slice(20, 28))
    crowd = dict(ytvis_anno(11, 2, box_mask(slice(0, 2), slice(0, 2))), iscrowd=1)
    return {
        "video_id": "yt1", "dataset_name": "", "height": H, "width": W, "length": 3,
        "file_names": [write_image(tmp_path / f"{t}.jpg", t) for t in range(3)],
        "annotations": [[ytvis_anno(7, 1, m7)], [ytvis_anno(9, 0, m9)],
                        [crowd, ytvis_anno(7, 1, m7)]],
    }


# --------------------------------------------------------------------------- frame sampling
def test_interval_sampling_is_the_official_stride_and_shrinks_for_short_videos():
    assert sample_by_interval(9, 2, 2, StubRng(3)) == [3, 5]
    assert sample_by_interval(9, 3, 2, StubRng(4)) == [4, 6, 8]  # last start that fits: 9-5
    with pytest.raises(AssertionError):
        sample_by_interval(9, 3, 2, StubRng(5))  # start 5 would need frame 9
    assert sample_by_interval(2, 2, 2, StubRng(0)) == [0, 1]  # stride 2 -> 1
    assert sample_by_interval(4, 3, 2, StubRng(1)) == [1, 2, 3]  # stride (4-1)//2 = 1
    assert sample_by_interval(1, 2, 2) == [0, 0]  # one-frame video: repeated
    assert sample_by_interval(2, 4, 2) == [0, 1, 1, 1]  # each frame once, then the last
    np.random.seed(0)
    starts = {tuple(sample_by_interval(6, 2, 2)) for _ in range(200)}
    assert starts == {(0, 2), (1, 3), (2, 4), (3, 5)}  # every start that fits, nothing else


def test_range_sampling_around_a_reference_frame():
    # reference 5, window +-2 = {3, 4, 6, 7}; the stub takes the first two -> 3, 4
    assert sample_in_range(10, 3, 2, StubRng(5)) == [3, 4, 5]
    assert sample_in_range(1, 2, 20) == [0, 0]
    assert sample_in_range(3, 5, 20, StubRng(1)) == [0, 1, 2, 2, 2]
    np.random.seed(0)
    for _ in range(100):
        idx = sample_in_range(30, 3, 4)
        assert idx == sorted(idx) and len(set(idx)) == 3 and idx[-1] - idx[0] <= 8
    sampler = FrameSampler(2, mode="interval", interval=2, shuffle=True, rng=StubRng(3))
    assert sampler(9) == [5, 3]  # shuffled (the stub reverses)
    with pytest.raises(ValueError, match="SAMPLING_FRAME_MODE 'nope'"):
        FrameSampler(2, mode="nope")


def test_sampling_config_defaults_are_the_official_ones():
    cfg = get_cfg()
    add_omgseg_config(cfg)
    assert cfg.INPUT.DATASET_MAPPER_NAME == "omg_multi_task"
    assert (cfg.INPUT.NUM_FRAMES, cfg.INPUT.SAMPLING_FRAME_MODE,
            cfg.INPUT.SAMPLING_FRAME_INTERVAL) == (2, "interval", 2)
    assert (cfg.INPUT.SAMPLING_FRAME_RANGE, cfg.INPUT.SAMPLING_FRAME_SHUFFLE) == (20, False)
    mapper = VideoClipDatasetMapper(cfg, is_train=True)
    s = mapper.frame_sampler
    assert (s.num_frames, s.mode, s.interval) == (2, "interval", 2)
    # Data-loader workers may receive the mappers pickled (spawn start method).
    copy = pickle.loads(pickle.dumps(build_train_mapper(cfg)))
    assert copy.mappers["video"].frame_sampler(1) == [0, 0]


# --------------------------------------------------------------------------- training clips
def test_ytvis_clip_tubes_are_keyed_by_track_id(ytvis_record):
    out = clip_mapper(Fixed([1, 2]))(ytvis_record)
    assert out["task"] == "instance" and out["frame_indices"] == [1, 2]
    assert out["video_id"] == "yt1" and (out["height"], out["width"]) == (H, W)
    assert out["file_name"] == ytvis_record["file_names"][1]
    assert out["video"].dtype == torch.uint8 and tuple(out["video"].shape) == (2, 3, H, W)
    expected = np.asarray(Image.open(ytvis_record["file_names"][2]).convert("RGB"))
    assert (out["video"][1].permute(1, 2, 0).numpy() == expected).all()
    m7 = box_mask(slice(2, 6), slice(3, 9))
    m9 = box_mask(slice(10, 15), slice(20, 28))
    f1, f2 = out["instances"]
    for inst in (f1, f2):  # same entities, same order (first appearance), crowd left out
        assert inst.gt_ids.tolist() == [9, 7] and inst.gt_classes.tolist() == [0, 1]
        assert inst.gt_masks.dtype == torch.bool and tuple(inst.gt_masks.shape) == (2, H, W)
    assert (f1.gt_masks[0].numpy() == m9).all() and not f1.gt_masks[1].any()  # 7 absent
    assert not f2.gt_masks[0].any() and (f2.gt_masks[1].numpy() == m7).all()  # 9 absent


def test_one_camera_same_flip_resize_and_crop_for_every_frame(tmp_path):
    img = write_image(tmp_path / "same.png", 5, 40, 60)
    label = np.zeros((40, 60), np.uint8)
    label[5:30, 10:50] = 1
    Image.fromarray(label).save(tmp_path / "m.png")
    record = {"video_id": "cam", "height": 40, "width": 60, "file_names": [img, img, img],
              "mask_file_names": [str(tmp_path / "m.png")] * 3}
    shared, per_frame = build_lsj_augmentations((16, 16), (0.8, 1.2), 0.5)
    mapper = clip_mapper(Fixed([0, 2]), shared, per_frame)
    corners = set()
    np.random.seed(0)
    for _ in range(15):
        out = mapper(record)
        assert torch.equal(out["video"][0], out["video"][1])  # same content, same camera
        a, b = out["instances"]
        assert torch.equal(a.gt_masks, b.gt_masks) and a.gt_ids.tolist() == [1]
        corners.add(tuple(out["video"][0, :, 0, 0].tolist()))
    assert len(corners) > 3  # the crop / flip / scale really vary between clips

    pseudo = PseudoVideoLSJDatasetMapper(num_frames=2, shared_augmentations=shared,
                                         frame_augmentations=per_frame, image_format="RGB")
    image_record = {"file_name": img, "height": 40, "width": 60, "sem_seg_file_name":
                    str(tmp_path / "m.png"), "task": "semantic"}
    differ = [not torch.equal(*pseudo(image_record)["video"]) for _ in range(10)]
    assert any(differ)  # pseudo-videos crop each frame independently


def test_one_frame_video_trains_by_repeating_it(ytvis_record):
    record = dict(ytvis_record, file_names=ytvis_record["file_names"][:1], length=1,
                  annotations=ytvis_record["annotations"][:1])
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.INPUT.LSJ.CROP_SIZE = [16, 16]
    out = VideoClipDatasetMapper(cfg, is_train=True)(record)
    assert out["frame_indices"] == [0, 0] and out["video"].shape[0] == 2
    assert torch.equal(out["video"][0], out["video"][1])
    assert torch.equal(out["instances"][0].gt_masks, out["instances"][1].gt_masks)


def test_vps_clip_matches_the_panoptic_pngs(synthetic_root):
    record = DatasetCatalog.get("omg_shapes_video_train_vps")[0]
    meta = MetadataCatalog.get("omg_shapes_video_train_vps")
    with pytest.raises(ValueError, match=r"frame 0 .*category id \d+ .*outside"):
        clip_mapper(Fixed([0, 4]))(record)  # 3 classes given: ids are checked
    out = VideoClipDatasetMapper(frame_sampler=Fixed([0, 4]), shared_augmentations=[],
                                 frame_augmentations=[], image_format="RGB")(record)
    assert out["task"] == "panoptic"
    ids = out["instances"][0].gt_ids.tolist()
    by_id = {s["id"]: s for t in (0, 4) for s in record["segments_infos"][t]}
    assert sorted(ids) == sorted(by_id)  # every segment of either frame, once
    assert out["instances"][0].gt_classes.tolist() == [by_id[i]["category_id"] for i in ids]
    assert any(not by_id[i]["isthing"] for i in ids) and any(by_id[i]["isthing"] for i in ids)
    assert len(meta.stuff_classes) > max(out["instances"][0].gt_classes.tolist())
    for k, t in enumerate((0, 4)):
        pan = rgb2id(np.asarray(Image.open(record["pan_seg_file_names"][t]).convert("RGB")))
        inst = out["instances"][k]
        assert inst.gt_ids.tolist() == ids
        for j, sid in enumerate(ids):
            assert (inst.gt_masks[j].numpy() == (pan == sid)).all(), (t, sid)


def test_davis_clip_is_class_agnostic(synthetic_root):
    record = DatasetCatalog.get("omg_shapes_video_train_davis")[0]
    out = VideoClipDatasetMapper(frame_sampler=Fixed([0, 3]), shared_augmentations=[],
                                 frame_augmentations=[], image_format="RGB")(record)
    assert out["task"] == "vos"
    pngs = [np.asarray(Image.open(record["mask_file_names"][t])) for t in (0, 3)]
    values = sorted((set(np.unique(pngs[0])) | set(np.unique(pngs[1]))) - {0, 255})
    for png, inst in zip(pngs, out["instances"]):
        assert sorted(inst.gt_ids.tolist()) == values
        assert inst.gt_classes.tolist() == [-1] * len(values)  # no class loss
        for j, v in enumerate(inst.gt_ids.tolist()):
            assert (inst.gt_masks[j].numpy() == (png == v)).all()


# --------------------------------------------------------------------------- test-time input
def test_video_test_mapper_for_every_video_evaluator(synthetic_root):
    cfg = make_tiny_cfg("unused", **{"INPUT.MIN_SIZE_TEST": 48, "INPUT.MAX_SIZE_TEST": 100})
    for kind in ("ytvis", "vps", "davis"):
        assert TEST_MAPPERS[kind] is VideoTestDatasetMapper
        name = f"omg_shapes_video_val_{kind}"
        mapper = build_test_mapper(cfg, name)
        assert isinstance(mapper, VideoTestDatasetMapper)
        record = DatasetCatalog.get(name)[0]
        out = mapper(record)
        frames = out["video_frames"]
        assert len(frames) == record["length"] == out["length"]
        assert frames.file_names == record["file_names"] and frames.video_id == out["video_id"]
        assert frames.original_size == (96, 128) == (out["height"], out["width"])
        assert frames.size == (48, 64) and frames[len(frames) - 1].shape == (48, 64, 3)
        assert out["dataset_name"] == name and "annotations" not in out
        assert ("first_frame_masks" in out) == (kind == "davis")
    png = np.asarray(Image.open(record["mask_file_names"][0]))
    ids = sorted(set(np.unique(png).tolist()) - {0, 255})
    assert out["object_ids"].tolist() == ids and out["object_ids"].dtype == torch.int64
    masks = out["first_frame_masks"]
    assert masks.dtype == torch.bool and tuple(masks.shape) == (len(ids), 96, 128)
    for j, v in enumerate(ids):
        assert (masks[j].numpy() == (png == v)).all()


def test_one_frame_video_at_inference(tmp_path):
    Image.fromarray(np.full((H, W), 1, np.uint8)).save(tmp_path / "0.png")
    record = {"video_id": "one", "file_names": [write_image(tmp_path / "0.jpg")],
              "mask_file_names": [str(tmp_path / "0.png")], "length": 1}
    mapper = VideoTestDatasetMapper(augmentations=[T.ResizeShortestEdge(10, 100)],
                                    image_format="RGB")
    out = mapper(record)
    assert len(out["video_frames"]) == 1 and out["video_frames"][0].shape == (10, 15, 3)
    assert (out["height"], out["width"]) == (H, W) and out["object_ids"].tolist() == [1]
    assert out["first_frame_masks"].all()


# --------------------------------------------------------------------------- bad video input
def test_frames_of_different_sizes_name_the_video_and_frame(ytvis_record, tmp_path):
    files = list(ytvis_record["file_names"])
    files[2] = write_image(tmp_path / "big.jpg", 2, h=H + 2)
    record = dict(ytvis_record, file_names=files)
    with pytest.raises(ValueError, match=r"video 'yt1', frame 2 \(.*big\.jpg\).*\(22, 30\)"):
        clip_mapper(Fixed([0, 2]))(record)
    frames = VideoTestDatasetMapper(augmentations=[], image_format="RGB")(record)["video_frames"]
    frames[1]
    with pytest.raises(ValueError, match=r"video 'yt1', frame 2"):
        frames[2]


def test_missing_or_corrupt_frame_names_file_and_video(ytvis_record, tmp_path):
    files = list(ytvis_record["file_names"])
    files[1] = str(tmp_path / "gone.jpg")
    with pytest.raises(FileNotFoundError, match=r"video 'yt1', frame 1 \(.*gone\.jpg\)"):
        clip_mapper(Fixed([0, 1]))(dict(ytvis_record, file_names=files))
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    files[1] = str(tmp_path / "bad.jpg")
    clip_mapper(Fixed([0, 2]))(dict(ytvis_record, file_names=files))  # frame 1 not drawn: fine
    with pytest.raises(ValueError, match=r"video 'yt1', frame 1 \(.*bad\.jpg\).*decode"):
        clip_mapper(Fixed([0, 1]))(dict(ytvis_record, file_names=files))


def test_record_lists_that_disagree_name_the_video(ytvis_record):
    mapper = clip_mapper(Fixed([0, 1]))
    with pytest.raises(ValueError, match=r"video 'yt1'.*'length' is 4 .*3 frames"):
        mapper(dict(ytvis_record, length=4))
    more = ytvis_record["annotations"] + [[]]
    with pytest.raises(ValueError, match=r"video 'yt1'.*'annotations' has 4 entries.*3 frames"):
        mapper(dict(ytvis_record, annotations=more, length=3))
    with pytest.raises(ValueError, match=r"video 'yt1'.*'annotations' has 2 entries.*frame 2"):
        VideoTestDatasetMapper(augmentations=[], image_format="RGB")(
            dict(ytvis_record, annotations=more[:2]))
    small = dict(ytvis_record["annotations"][0][0],
                 segmentation=mask_util.encode(np.zeros((H - 1, W), np.uint8, order="F")))
    annos = [[small]] + ytvis_record["annotations"][1:]
    with pytest.raises(ValueError, match=r"video 'yt1', frame 0 .*RLE size \(19, 30\)"):
        mapper(dict(ytvis_record, annotations=annos))


def test_vipseg_pngs_that_do_not_match_the_frames(synthetic_root, tmp_path):
    record = dict(DatasetCatalog.get("omg_shapes_video_train_vps")[0])
    vid = record["video_id"]
    short = dict(record, pan_seg_file_names=record["pan_seg_file_names"][:-1])
    n = record["length"]
    with pytest.raises(ValueError, match=rf"video '{vid}'.*'pan_seg_file_names' has {n - 1} "
                                         rf"entries.*frame {n - 1} has no"):
        clip_mapper(Fixed([0, 1]))(short)
    pan = np.asarray(Image.open(record["pan_seg_file_names"][1]).convert("RGB"))
    Image.fromarray(pan[:-4]).save(tmp_path / "small.png")
    pngs = list(record["pan_seg_file_names"])
    pngs[1] = str(tmp_path / "small.png")
    with pytest.raises(ValueError, match=rf"video '{vid}'.*frame 1 .*small\.png.*\(92, 128\)"):
        VideoClipDatasetMapper(frame_sampler=Fixed([0, 1]), shared_augmentations=[],
                               frame_augmentations=[], image_format="RGB")(
            dict(record, pan_seg_file_names=pngs))


def test_video_jsons_whose_frames_do_not_match(tmp_path):
    (tmp_path / "img" / "v").mkdir(parents=True)
    write_image(tmp_path / "img" / "v" / "0.jpg")
    rle = mask_util.encode(np.asfortranarray(box_mask(slice(0, 3), slice(0, 3)).astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    yt = {"videos": [{"id": 1, "file_names": ["v/0.jpg"], "length": 1, "height": H,
                      "width": W}],
          "annotations": [{"id": 5, "video_id": 1, "category_id": 1, "iscrowd": 0,
                           "segmentations": [rle, None], "bboxes": [[0, 0, 3, 3], None]}],
          "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "yt.json").write_text(json.dumps(yt))
    with pytest.raises(ValueError, match=r"yt\.json: video 1 has 1 frames but annotation 5 "
                                         r"lists 2 'segmentations'"):
        load_ytvis_json(str(tmp_path / "yt.json"), str(tmp_path / "img"))
    yt["videos"][0]["length"] = 2
    yt["annotations"][0].update(segmentations=[rle], bboxes=[[0, 0, 3, 3]])
    (tmp_path / "yt.json").write_text(json.dumps(yt))
    with pytest.raises(ValueError, match="video 1 has length 2 but 1 file names"):
        load_ytvis_json(str(tmp_path / "yt.json"), str(tmp_path / "img"))

    (tmp_path / "pan" / "v").mkdir(parents=True)
    vp = {"videos": [{"video_id": "v", "images": [
              {"id": "0", "file_name": "0.jpg", "height": H, "width": W}]}],
          "annotations": [{"video_id": "v", "annotations": [
              {"image_id": "0", "file_name": "0.png", "segments_info": []},
              {"image_id": "1", "file_name": "1.png", "segments_info": []}]}],
          "categories": [{"id": 1, "name": "thing", "isthing": 1}]}
    (tmp_path / "vp.json").write_text(json.dumps(vp))
    with pytest.raises(ValueError, match=r"vp\.json: video 'v' has annotations of frames not "
                                         r"in its 'images': \['1'\]"):
        load_video_panoptic_json(str(tmp_path / "vp.json"), str(tmp_path / "img"),
                                 str(tmp_path / "pan"), {"thing_dataset_id_to_contiguous_id":
                                                         {1: 0}})


def test_vos_without_first_frame_objects_or_masks(tmp_path):
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "0.png")
    Image.fromarray(np.full((H, W), 255, np.uint8)).save(tmp_path / "void.png")
    frames = [write_image(tmp_path / f"{t}.jpg", t) for t in range(2)]
    mapper = VideoTestDatasetMapper(augmentations=[], image_format="RGB")
    record = {"video_id": "empty_vos", "file_names": frames,
              "mask_file_names": [str(tmp_path / "0.png"), None]}
    with pytest.raises(ValueError, match=r"video 'empty_vos'.*no object.*to track"):
        mapper(record)
    with pytest.raises(ValueError, match=r"video 'empty_vos'.*no object"):
        mapper(dict(record, mask_file_names=[str(tmp_path / "void.png"), None]))
    with pytest.raises(ValueError, match=r"video 'empty_vos'.*no mask PNG for frame 0"):
        mapper(dict(record, mask_file_names=[None, None]))
    with pytest.raises(ValueError, match=r"video 'empty_vos', frame 1 .*no mask PNG"):
        clip_mapper(Fixed([0, 1]))(record)  # training needs every drawn frame's mask


def test_image_only_mapper_names_a_video_record(ytvis_record):
    shared, per_frame = build_lsj_augmentations((16, 16), (1.0, 1.0), 0.0)
    pseudo = PseudoVideoLSJDatasetMapper(num_frames=2, shared_augmentations=shared,
                                         frame_augmentations=per_frame, image_format="RGB")
    with pytest.raises(ValueError, match="video 'yt1'.*is a video record.*omg_multi_task"):
        pseudo(ytvis_record)


# --------------------------------------------------------------------------- mixed training
def test_multi_task_mapper_dispatches_by_record_kind(ytvis_record, tmp_path):
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.INPUT.LSJ.CROP_SIZE = [16, 16]
    mapper = build_train_mapper(cfg)
    assert isinstance(mapper, MultiTaskDatasetMapper)
    assert isinstance(mapper.mappers["image"], PseudoVideoLSJDatasetMapper)
    assert isinstance(mapper.mappers["video"], VideoClipDatasetMapper)
    Image.fromarray(np.full((H, W), 1, np.uint8)).save(tmp_path / "sem.png")
    image = {"file_name": ytvis_record["file_names"][0], "height": H, "width": W,
             "sem_seg_file_name": str(tmp_path / "sem.png")}
    assert record_kind(image) == "image" and record_kind(ytvis_record) == "video"
    out_image, out_video = mapper(image), mapper(ytvis_record)
    assert out_image["task"] == "semantic" and "video_id" not in out_image
    assert out_video["task"] == "instance" and out_video["video_id"] == "yt1"
    assert out_image["video"].shape[0] == out_video["video"].shape[0] == 2
    cfg.INPUT.DATASET_MAPPER_NAME = "omg_pseudo_video_lsj"  # still available
    assert isinstance(build_train_mapper(cfg), MAPPERS["omg_pseudo_video_lsj"])


MIXED = ("omg_shapes_train_panoptic", "omg_shapes_video_train_vps",
         "omg_shapes_video_train_ytvis", "omg_shapes_video_train_davis")


def test_trainer_mixes_images_and_videos_in_one_run(synthetic_root, tmp_path):
    cfg = make_tiny_cfg(str(tmp_path), **{
        "DATASETS.TRAIN": MIXED, "DATASETS.TEST": (), "SOLVER.MAX_ITER": 5,
        "DATALOADER.SAMPLER_TRAIN": "WeightedTrainingSampler",
        # Detectron2 groups square images apart from landscape videos; mix them here.
        "DATALOADER.ASPECT_RATIO_GROUPING": False,
    })
    cfg.DATASETS.TRAIN_REPEAT_FACTOR = [[name, 1.0 if i == 0 else 6.0]
                                        for i, name in enumerate(MIXED)]
    trainer = Trainer(cfg)
    batches = []
    trainer.model.register_forward_pre_hook(
        lambda module, args: batches.append([(x["dataset_name"], x["task"], "video_id" in x,
                                              tuple(x["video"].shape[:2])) for x in args[0]]))
    trainer.resume_or_load(resume=False)
    trainer.train()
    losses = trainer.storage.history("total_loss").values()
    assert len(losses) == 5 and all(np.isfinite(v) for v, _ in losses)
    samples = [s for b in batches for s in b]
    assert len(batches) == 5 and all(len(b) == 2 for b in batches)
    assert all(s[3] == (2, 3) for s in samples)  # T = 2 everywhere
    kinds = {s[2] for s in samples}
    assert kinds == {True, False}, samples  # pseudo-videos and real clips both trained
    task_of = {MIXED[0]: "panoptic", MIXED[1]: "panoptic", MIXED[2]: "instance",
               MIXED[3]: "vos"}
    assert all(s[1] == task_of[s[0]] and s[2] == (s[0] != MIXED[0]) for s in samples)

    # One batch holding a pseudo-video and a clip of every video kind trains as one.
    mapper = build_train_mapper(cfg)
    batch = [mapper(DatasetCatalog.get(name)[0]) for name in MIXED]
    assert [b["task"] for b in batch] == ["panoptic", "panoptic", "instance", "vos"]
    total = sum(trainer.model(batch).values())
    assert torch.isfinite(total)
    total.backward()
